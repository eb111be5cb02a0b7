"""Account pages: register, throttled login, account settings (username, password, tokens)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from web.accounts import alerts, throttle
from web.accounts.forms import (
    AlertForm,
    RegisterForm,
    ThrottledLoginForm,
    ThrottledPasswordChangeForm,
    TokenForm,
    UsernameForm,
)
from web.accounts.models import ApiToken


class LoginView(auth_views.LoginView):
    """Django's login page with the failed-login throttle."""

    template_name = "accounts/login.html"
    authentication_form = ThrottledLoginForm
    redirect_authenticated_user = True


def register(request: HttpRequest) -> HttpResponse:
    """Create an account and log it in."""
    if request.user.is_authenticated:
        return redirect("simulations:list")
    form = RegisterForm(request.POST or None, ip=throttle.client_ip(request))
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request, f"Welcome, {user.get_username()}! Create your first experiment below."
        )
        return redirect("experiments:new")
    return render(request, "accounts/register.html", {"form": form})


def _account_page(request: HttpRequest, **forms: object) -> HttpResponse:
    context = {
        "username_form": UsernameForm(
            request.user, initial={"username": request.user.get_username()}
        ),
        "password_form": ThrottledPasswordChangeForm(request.user),
        "token_form": TokenForm(),
        "tokens": ApiToken.objects.filter(user=request.user).order_by("-created_at"),
        "alert_form": AlertForm(initial={"diagnoses": alerts.preference(request.user)}),
    }
    context.update(forms)
    status = 400 if any(getattr(f, "errors", None) for f in forms.values()) else 200
    return render(request, "accounts/account.html", context, status=status)


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """Account settings: username, password, diagnosis alerts and API tokens."""
    return _account_page(request)


@login_required
def change_username(request: HttpRequest) -> HttpResponse:
    """Rename the account (the current password confirms it)."""
    if request.method != "POST":
        return redirect("account")
    form = UsernameForm(request.user, request.POST, ip=throttle.client_ip(request))
    if not form.is_valid():
        return _account_page(request, username_form=form)
    form.save()
    messages.success(request, f"Your username is now {request.user.get_username()}.")
    return redirect("account")


@login_required
def change_password(request: HttpRequest) -> HttpResponse:
    """Change the password; this session stays logged in, other sessions end."""
    if request.method != "POST":
        return redirect("account")
    form = ThrottledPasswordChangeForm(request.user, request.POST, ip=throttle.client_ip(request))
    if not form.is_valid():
        return _account_page(request, password_form=form)
    user = form.save()
    update_session_auth_hash(request, user)
    messages.success(request, "Your password was changed.")
    return redirect("account")


@login_required
def change_alerts(request: HttpRequest) -> HttpResponse:
    """Choose which new diagnoses of one's runs are announced (off, fatal only, all)."""
    if request.method != "POST":
        return redirect("account")
    form = AlertForm(request.POST)
    if not form.is_valid():
        return _account_page(request, alert_form=form)
    level = alerts.set_preference(request.user, form.cleaned_data["diagnoses"])
    text = dict(AlertForm.base_fields["diagnoses"].choices)[level]
    messages.success(request, f"Diagnosis alerts: {text.lower()}.")
    return redirect("account")


@login_required
@require_POST
def create_token(request: HttpRequest) -> HttpResponse:
    """Issue an API token and show it once."""
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _account_page(request, token_form=form)
    row, token = ApiToken.issue(request.user, name=form.cleaned_data["name"])
    return _account_page(request, new_token=token, new_token_row=row)


@login_required
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    """Delete one of the user's tokens; scripts using it get 401 from now on."""
    deleted, _ = ApiToken.objects.filter(pk=token_id, user=request.user).delete()
    if not deleted:
        raise Http404("no such token")
    messages.success(request, "The token was revoked.")
    return redirect("account")
