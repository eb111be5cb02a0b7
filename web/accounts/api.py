"""REST endpoints of accounts: register, exchange a username and password for a token, list and
revoke tokens, change one's username or password, choose one's diagnosis alerts.

Validation and throttles are the account pages' own forms (web.accounts.forms)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth import authenticate, update_session_auth_hash
from django.http import HttpRequest
from ninja import Router, Schema, Status

from schemas import auth
from web.accounts import alerts, keys, throttle
from web.accounts.auth import API_AUTH
from web.accounts.forms import (
    RegisterForm,
    ThrottledPasswordChangeForm,
    UsernameForm,
    is_throttled,
)
from web.accounts.models import ApiToken
from web.errors import Invalid, NotFound, Throttled, Unauthorized

router = Router(tags=["accounts"])


class TokenIn(Schema):
    """Credentials for a new token."""

    username: str
    password: str
    name: str = ""


class TokenOut(Schema):
    """A new token; it is shown only once."""

    token: str
    username: str


class TokenInfoOut(Schema):
    """A token as listed: never the secret, only its first characters."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


@router.post("/tokens", response={201: TokenOut}, auth=None)
def create_token(request: HttpRequest, body: TokenIn) -> Status[TokenOut]:
    """Issue a bearer token for scripts (failed attempts count toward the login lockout)."""
    if "\x00" in body.username + body.password:  # no account has one; PostgreSQL refuses it
        raise Unauthorized("wrong username or password")
    ip = throttle.client_ip(request)
    wait = throttle.locked_for(body.username, ip)
    if wait:
        raise Throttled(throttle.lockout_message(wait))
    user = authenticate(request, username=body.username, password=body.password)
    if user is None:
        throttle.record_failure(body.username, ip)
        raise Unauthorized("wrong username or password")
    throttle.clear(body.username, ip)
    _, token = ApiToken.issue(user, name=body.name[:100])
    return Status(201, TokenOut(token=token, username=user.get_username()))


@router.get("/tokens", response=list[TokenInfoOut], auth=API_AUTH)
def list_tokens(request: HttpRequest) -> list[ApiToken]:
    """The caller's tokens, newest first."""
    return list(ApiToken.objects.filter(user=request.auth).order_by("-created_at"))


@router.delete("/tokens/{token_id}", response={204: None}, auth=API_AUTH)
def revoke_token(request: HttpRequest, token_id: int) -> Status[None]:
    """Revoke one of the caller's tokens (another user's token is 404)."""
    deleted, _ = ApiToken.objects.filter(pk=token_id, user=request.auth).delete()
    if not deleted:
        raise NotFound(f"no token {token_id}")
    return Status(204, None)


class RegisterIn(Schema):
    """A new account: the same rules as the register page (one password: no typing twice)."""

    username: str
    password: str


class AccountOut(Schema):
    """The caller's account."""

    id: int
    username: str
    is_staff: bool
    date_joined: datetime


class RegisteredOut(AccountOut):
    """A new account and a token for it (shown only once)."""

    token: str


class UsernameIn(Schema):
    """A new username, confirmed with the current password."""

    username: str
    password: str


class PasswordIn(Schema):
    """The current password and the new one."""

    old_password: str
    new_password: str


def _account(user: Any) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "is_staff": user.is_staff,
        "date_joined": user.date_joined,
    }


def _validate(form: forms.Form, what: str, fields: dict[str, str]) -> None:
    """Raise Throttled or Invalid (errors under the API's field names) unless the form is valid."""
    if form.is_valid():
        return
    message = is_throttled(form)
    if message:
        raise Throttled(message)
    errors: dict[str, str] = {}
    for field, messages in form.errors.items():
        errors.setdefault(fields.get(field, field), " ".join(messages))
    raise Invalid(f"invalid {what}", errors)


@router.post("/accounts", response={201: RegisteredOut}, auth=None)
def register(request: HttpRequest, body: RegisterIn) -> Status[RegisteredOut]:
    """Create an account (sign-ups per address are limited) and issue its first token."""
    data = {"username": body.username, "password1": body.password, "password2": body.password}
    form = RegisterForm(data, ip=throttle.client_ip(request))
    _validate(form, "registration", {"password1": "password", "password2": "password"})
    user = form.save()
    _, token = ApiToken.issue(user, name="registration")
    return Status(201, RegisteredOut(**_account(user), token=token))


@router.get("/accounts/me", response=AccountOut, auth=API_AUTH)
def me(request: HttpRequest) -> dict[str, Any]:
    """Who the token or session belongs to."""
    return _account(request.auth)


@router.post("/accounts/me/username", response=AccountOut, auth=API_AUTH)
def change_username(request: HttpRequest, body: UsernameIn) -> dict[str, Any]:
    """Rename the account; the runs follow. A wrong password counts toward the login lockout."""
    data = {"username": body.username, "password": body.password}
    form = UsernameForm(request.auth, data, ip=throttle.client_ip(request))
    _validate(form, "username change", {})
    return _account(form.save())


@router.post("/accounts/me/password", response={204: None}, auth=API_AUTH)
def change_password(request: HttpRequest, body: PasswordIn) -> Status[None]:
    """Change the password (Django's validators apply); tokens stay valid, other sessions end."""
    data = {
        "old_password": body.old_password,
        "new_password1": body.new_password,
        "new_password2": body.new_password,
    }
    form = ThrottledPasswordChangeForm(request.auth, data, ip=throttle.client_ip(request))
    _validate(
        form, "password change", {"new_password1": "new_password", "new_password2": "new_password"}
    )
    user = form.save()
    if hasattr(request, "session"):
        update_session_auth_hash(request, user)  # a browser session calling the API stays in
    return Status(204, None)


class CommandKeyOut(Schema):
    """What a Kafka client needs to sign commands as this user (docs/security.md)."""

    principal: str
    key_id: int
    key: str
    max_age_s: float
    signing_text: str


def _command_key(user: Any) -> dict[str, Any]:
    key, generation = keys.key_of(user)
    return {
        "principal": f"user:{user.pk}",
        "key_id": generation,
        "key": key,
        "max_age_s": auth.MAX_AGE_S,
        "signing_text": "type|command_id|simulation_id|principal|key_id|unix_seconds(issued_at)|",
    }


@router.get("/command-key", response=CommandKeyOut, auth=API_AUTH)
def command_key(request: HttpRequest) -> dict[str, Any]:
    """Your command key: sign commands you send to nnt.commands with any Kafka client.

    It is revoked when you change your password, when an admin disables your account, or
    when you ask for a new one (`POST /api/command-key/rotate`).
    """
    return _command_key(request.auth)


@router.post("/command-key/rotate", response=CommandKeyOut, auth=API_AUTH)
def rotate_command_key(request: HttpRequest) -> dict[str, Any]:
    """Revoke your command key and get a new one."""
    keys.rotate(request.auth)
    return _command_key(request.auth)


class AlertsIn(Schema):
    """Which new diagnoses of one's runs to announce."""

    diagnoses: str


class AlertsOut(Schema):
    """The diagnosis alert level: off, fatal (NaN, divergence, dead network) or all."""

    diagnoses: str


@router.get("/accounts/me/alerts", response=AlertsOut, auth=API_AUTH)
def get_alerts(request: HttpRequest) -> dict[str, str]:
    """Your diagnosis alert level (default off)."""
    return {"diagnoses": alerts.preference(request.auth)}


@router.put("/accounts/me/alerts", response=AlertsOut, auth=API_AUTH)
def set_alerts(request: HttpRequest, body: AlertsIn) -> dict[str, str]:
    """Choose which new diagnoses of your runs are announced on the pages (GET /api/alerts
    lists them whatever the level)."""
    if body.diagnoses not in alerts.LEVELS:
        raise Invalid(
            "invalid alert level",
            {"diagnoses": f"one of {', '.join(alerts.LEVELS)}, not {body.diagnoses[:20]!r}"},
        )
    return {"diagnoses": alerts.set_preference(request.auth, body.diagnoses)}
