"""Account forms: registration, throttled login, username and password change.

Pages and the REST API (web.accounts.api) validate through these same forms, so both apply
the same rules and the same throttles."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, UserCreationForm
from django.db import transaction

from web.accounts import throttle
from web.accounts.models import ALERT_CHOICES

THROTTLED = "throttled"


def confirm_password(
    user: Any, password: str, ip: str | None, wrong: forms.ValidationError
) -> None:
    """Check the current password under the login throttle: a wrong one counts as a failed login."""
    username = user.get_username()
    wait = throttle.locked_for(username, ip)
    if wait:
        raise forms.ValidationError(throttle.lockout_message(wait), code=THROTTLED)
    if not user.check_password(password):
        throttle.record_failure(username, ip)
        raise wrong
    throttle.clear(username, ip)


def is_throttled(form: forms.Form) -> str | None:
    """The throttle's message when a form failed because of it, else None."""
    for errors in form.errors.as_data().values():
        for error in errors:
            if error.code == THROTTLED:
                return " ".join(error.messages)
    return None


class RegisterForm(UserCreationForm):
    """Username and password twice; Django's password validators apply; sign-ups per IP are
    limited (NNT_REGISTER_MAX_PER_IP per NNT_REGISTER_WINDOW_S)."""

    def __init__(self, *args: Any, ip: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ip = ip

    def clean(self) -> dict[str, Any]:
        """Refuse before anything else when this address created too many accounts."""
        wait = throttle.registration_wait(self.ip)
        if wait:
            raise forms.ValidationError(throttle.registration_message(wait), code=THROTTLED)
        return super().clean()

    def save(self, commit: bool = True) -> Any:
        """Create the user and count the sign-up against the address."""
        user = super().save(commit=commit)
        throttle.record_registration(self.ip)
        return user


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Django's password change (old password, new one twice, validators) under the throttle."""

    def __init__(self, user: Any, *args: Any, ip: str | None = None, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.ip = ip
        self.fields["old_password"].widget.attrs.pop("autofocus", None)

    def clean_old_password(self) -> str:
        """The current password, checked; failures count toward the login lockout."""
        password = self.cleaned_data.get("old_password") or ""
        wrong = forms.ValidationError(
            self.error_messages["password_incorrect"], code="password_incorrect"
        )
        confirm_password(self.user, password, self.ip, wrong)
        return password


class ThrottledLoginForm(AuthenticationForm):
    """Django's login form that refuses a (username, IP) pair after too many failures."""

    def clean(self) -> dict[str, Any]:
        """Check the lockout before the password, count a failure after a wrong one."""
        username = self.data.get("username", "")
        ip = throttle.client_ip(self.request)
        wait = throttle.locked_for(username, ip)
        if wait:
            raise forms.ValidationError(throttle.lockout_message(wait), code="throttled")
        try:
            cleaned = super().clean()
        except forms.ValidationError as exc:
            if any(getattr(e, "code", "") == "invalid_login" for e in exc.error_list):
                throttle.record_failure(username, ip)
            raise
        throttle.clear(username, ip)
        return cleaned


class UsernameForm(forms.Form):
    """A new username, confirmed with the current password."""

    username = forms.CharField(max_length=150, help_text="Letters, digits and @ . + - _ only.")
    password = forms.CharField(widget=forms.PasswordInput, label="Current password", strip=False)

    def __init__(self, user: Any, *args: Any, ip: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.ip = ip

    def clean_username(self) -> str:
        """Valid by the user model's rules and not taken by someone else."""
        name = self.cleaned_data["username"].strip()
        model = get_user_model()
        field = model._meta.get_field(model.USERNAME_FIELD)
        for validator in field.validators:
            validator(name)
        taken = model.objects.filter(username__iexact=name).exclude(pk=self.user.pk).exists()
        if taken:
            raise forms.ValidationError("This username is taken.")
        return name

    def clean_password(self) -> str:
        """The current password, checked; failures count toward the login lockout."""
        password = self.cleaned_data["password"]
        confirm_password(self.user, password, self.ip, forms.ValidationError("Wrong password."))
        return password

    def save(self) -> Any:
        """Rename the user, and the owner name their runs show (access goes by id)."""
        from web.simulations.models import Simulation

        new = self.cleaned_data["username"]
        with transaction.atomic():
            self.user.username = new
            self.user.save(update_fields=["username"])
            Simulation.objects.filter(owner=self.user).update(owner_name=new)  # display only
        return self.user


class TokenForm(forms.Form):
    """A name for a new API token."""

    name = forms.CharField(
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. laptop script"}),
    )


class AlertForm(forms.Form):
    """Which new diagnoses of one's runs show as a toast and a desktop notification."""

    diagnoses = forms.ChoiceField(
        label="Diagnosis alerts",
        choices=ALERT_CHOICES,
        widget=forms.RadioSelect,
        help_text="Shown on any page of NN Tracker while it is open, and as a desktop "
        "notification if your browser allows it.",
    )
