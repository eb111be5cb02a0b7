"""Console forms: the users filter bar and a user's quota."""

from __future__ import annotations

from django import forms

from web.accounts import quotas

GIB = 1024**3


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

    def extra(self) -> dict[str, int | None]:
        """The limits with no default (blank: no limit)."""
        return {name: self.cleaned_data.get(name) for name in quotas.EXTRA}

    def limits(self) -> tuple[int | None, int | None]:
        """(max_concurrent_runs, max_memory_bytes) to store."""
        runs = self.cleaned_data.get("max_concurrent_runs")
        gib = self.cleaned_data.get("max_memory_gib")
        return runs, None if gib is None else int(gib * GIB)
