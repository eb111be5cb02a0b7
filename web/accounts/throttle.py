"""Throttles: N failed password checks per (username, IP) within a window lock that pair out,
and at most M accounts are created from one IP within another window.

Backed by the database (nnt_login_failure, nnt_registration), so every web process and restart
sees the same counts; a lockout ends by itself when the oldest counted row leaves the window.
A wrong current password on the account page (rename, password change) counts like a failed
login: it is the same guess.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from web.accounts.models import LoginFailure, Registration


def client_ip(request: HttpRequest | None) -> str | None:
    """The peer address (daphne binds locally; a proxy must pass --proxy-headers to daphne)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def _key(username: str) -> str:
    return (username or "").strip().lower()[:150]


def _window() -> timedelta:
    return timedelta(seconds=settings.NNT_LOGIN_WINDOW_S)


def _wait(times: list[datetime], limit: int, window: timedelta) -> int:
    """Seconds until the oldest of the `limit` newest rows leaves the window; 0 under the limit."""
    if len(times) < limit:
        return 0
    free_at = times[-1] + window
    return max(1, math.ceil((free_at - timezone.now()).total_seconds()))


def locked_for(username: str, ip: str | None) -> int:
    """Seconds until this pair may try again; 0 when it is not locked out."""
    since = timezone.now() - _window()
    times = list(
        LoginFailure.objects.filter(username=_key(username), ip=ip, at__gte=since)
        .order_by("-at")
        .values_list("at", flat=True)[: settings.NNT_LOGIN_MAX_FAILURES]
    )
    return _wait(times, settings.NNT_LOGIN_MAX_FAILURES, _window())


def record_failure(username: str, ip: str | None) -> None:
    """Count one failed login, and forget failures older than the window."""
    LoginFailure.objects.create(username=_key(username), ip=ip)
    LoginFailure.objects.filter(at__lt=timezone.now() - _window()).delete()


def clear(username: str, ip: str | None) -> None:
    """Forget this pair's failures after a successful login."""
    LoginFailure.objects.filter(username=_key(username), ip=ip).delete()


def _minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"


def lockout_message(seconds: int) -> str:
    """What the user reads while locked out."""
    return (
        f"Too many failed logins for this username from your address. "
        f"Try again in {_minutes(seconds)}."
    )


def _registration_window() -> timedelta:
    return timedelta(seconds=settings.NNT_REGISTER_WINDOW_S)


def registration_wait(ip: str | None) -> int:
    """Seconds until this address may create another account; 0 when it may now."""
    since = timezone.now() - _registration_window()
    times = list(
        Registration.objects.filter(ip=ip, at__gte=since)
        .order_by("-at")
        .values_list("at", flat=True)[: settings.NNT_REGISTER_MAX_PER_IP]
    )
    return _wait(times, settings.NNT_REGISTER_MAX_PER_IP, _registration_window())


def record_registration(ip: str | None) -> None:
    """Count one new account, and forget those older than the window."""
    Registration.objects.create(ip=ip)
    Registration.objects.filter(at__lt=timezone.now() - _registration_window()).delete()


def registration_message(seconds: int) -> str:
    """What a visitor reads when their address created too many accounts."""
    return f"Too many accounts were created from your address. Try again in {_minutes(seconds)}."
