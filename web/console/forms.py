"""Console forms: the users filter bar and a user's quota."""

from __future__ import annotations

from django import forms

from web.accounts import quotas

GIB = 1024**3
# Limits stored in bytes and entered in GiB: the stored name -> the form field's name.
IN_GIB = {"max_storage_bytes": "max_storage_gib", "max_run_memory_bytes": "max_run_memory_gib"}


class UserFilterForm(forms.Form):
    """Search, filter and sort of the users list (every field optional)."""

    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "username or email", "type": "search"}),
    )
    staff = forms.ChoiceField(
        required=False,
        label="Role",
        choices=[("", "any role"), ("yes", "admins"), ("no", "non-admins")],
    )
    active = forms.ChoiceField(
        required=False,
        label="State",
        choices=[("", "any state"), ("yes", "enabled"), ("no", "disabled")],
    )
    sort = forms.ChoiceField(
        required=False,
        label="Sort",
        choices=[
            ("username", "name A→Z"),
            ("-username", "name Z→A"),
            ("-joined", "newest"),
            ("joined", "oldest"),
            ("-login", "last login"),
            ("-simulations", "most simulations"),
            ("-running", "most running"),
        ],
    )


class QuotaForm(forms.Form):
    """An admin's override of a user's limits; blank means the default."""

    max_concurrent_runs = forms.IntegerField(
        required=False, min_value=1, max_value=10_000, label="Max concurrent runs"
    )
    max_memory_gib = forms.FloatField(
        required=False, min_value=0.01, max_value=1_000_000, label="Max memory (GiB)"
    )
    max_queued_runs = forms.IntegerField(
        required=False, min_value=0, max_value=1_000_000, label="Max queued runs"
    )
    max_runs_per_experiment = forms.IntegerField(
        required=False, min_value=1, max_value=1_000_000, label="Max runs per experiment"
    )
    max_epochs = forms.IntegerField(
        required=False, min_value=1, max_value=10_000_000, label="Max epochs per run"
    )
    max_storage_gib = forms.FloatField(
        required=False, min_value=0, max_value=1_000_000, label="Max dataset storage (GiB)"
    )
    max_run_memory_gib = forms.FloatField(
        required=False, min_value=0.0625, max_value=1_000_000, label="Memory per run (GiB)"
    )
    max_run_cpus = forms.FloatField(
        required=False, min_value=0.1, max_value=1024, label="CPUs per run"
    )

    def extra(self) -> dict[str, float | None]:
        """The limits with no default (blank: no limit, or the host's per-run resources),
        in the units they are stored in."""
        out: dict[str, float | None] = {}
        for name in quotas.EXTRA:
            value = self.cleaned_data.get(IN_GIB.get(name, name))
            out[name] = int(value * GIB) if name in IN_GIB and value is not None else value
        return out

    @staticmethod
    def initial_of(limits: quotas.Limits) -> dict[str, float | None]:
        """The form's fields filled from the limits in force (blank where a default applies)."""
        initial: dict[str, float | None] = {
            "max_concurrent_runs": limits.max_concurrent_runs if limits.custom_runs else None,
            "max_memory_gib": round(limits.max_memory_bytes / GIB, 2)
            if limits.custom_memory
            else None,
        }
        for name in quotas.EXTRA:
            value = getattr(limits, name)
            if name in IN_GIB:
                initial[IN_GIB[name]] = None if value is None else round(value / GIB, 4)
            else:
                initial[name] = value
        return initial

    def limits(self) -> tuple[int | None, int | None]:
        """(max_concurrent_runs, max_memory_bytes) to store."""
        runs = self.cleaned_data.get("max_concurrent_runs")
        gib = self.cleaned_data.get("max_memory_gib")
        return runs, None if gib is None else int(gib * GIB)
