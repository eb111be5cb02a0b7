"""Failed-login throttle: N failures per (username, IP) within a window lock that pair out.

Backed by the database (nnt_login_failure), so every web process and restart sees the same
counts; a lockout ends by itself when the oldest counted failure leaves the window.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from web.accounts.models import LoginFailure


def client_ip(request: HttpRequest | None) -> str | None:
    """The peer address (daphne binds locally; a proxy must pass --proxy-headers to daphne)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def _key(username: str) -> str:
    return (username or "").strip().lower()[:150]


def _window() -> timedelta:
    return timedelta(seconds=settings.NNT_LOGIN_WINDOW_S)


def locked_for(username: str, ip: str | None) -> int:
    """Seconds until this pair may try again; 0 when it is not locked out."""
    since = timezone.now() - _window()
    times = list(
        LoginFailure.objects.filter(username=_key(username), ip=ip, at__gte=since)
        .order_by("-at")
        .values_list("at", flat=True)[: settings.NNT_LOGIN_MAX_FAILURES]
    )
    if len(times) < settings.NNT_LOGIN_MAX_FAILURES:
        return 0
    free_at = times[-1] + _window()
    return max(1, math.ceil((free_at - timezone.now()).total_seconds()))


def record_failure(username: str, ip: str | None) -> None:
    """Count one failed login, and forget failures older than the window."""
    LoginFailure.objects.create(username=_key(username), ip=ip)
    LoginFailure.objects.filter(at__lt=timezone.now() - _window()).delete()


def clear(username: str, ip: str | None) -> None:
    """Forget this pair's failures after a successful login."""
    LoginFailure.objects.filter(username=_key(username), ip=ip).delete()


def lockout_message(seconds: int) -> str:
    """What the user reads while locked out."""
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return (
        f"Too many failed logins for this username from your address. "
        f"Try again in {minutes} {unit}."
    )
