"""Sockets end with their session and their account.

Every socket joins its account's group (`account_group`). A change to the user (disabled,
password or username changed, staff rights revoked, any save but a login's `last_login`) or
its deletion tells that group to re-check, and each socket whose session or account no longer
holds closes (`ENDED`); a logout tells the sockets of that session to close. Changes made
elsewhere (another web process, `nntracker manage`, a bulk update) are caught by each socket's
own re-check every NNT_SOCKET_RECHECK_S seconds. The page's script reconnects after `ENDED`,
and the reconnection is refused unless a valid session remains.
"""

from __future__ import annotations

import logging
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from web.live.messages import account_group

log = logging.getLogger(__name__)
ENDED = 4401  # close code: the session or the account ended (4403 is "never allowed")
CHECK = "account.check"
SESSION_ENDED = "session.ended"


def allowed(user: Any) -> bool:
    """A signed-in, active account (checked as each socket connects)."""
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


def _current(scope: dict[str, Any]) -> Any:
    """The account as the database has it now, through the socket's session when it has one
    (so a logout or a password change ends it too); None when it no longer signs in."""
    user = scope.get("user")
    key = getattr(scope.get("session"), "session_key", None)
    if key:
        store = import_module(settings.SESSION_ENGINE).SessionStore(key)
        current = auth.get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]
        return current if current.is_authenticated else None
    return auth.get_user_model().objects.filter(pk=getattr(user, "pk", None)).first()


@database_sync_to_async
def still_valid(scope: dict[str, Any]) -> bool:
    """Whether the socket's user may still receive what it joined: same account, still active,
    same name (the list's group) and same staff flag (what it may see)."""
    user = scope.get("user")
    if user is None or not allowed(user):
        return False
    current = _current(scope)
    return bool(
        current is not None
        and current.pk == user.pk
        and current.is_active
        and current.is_staff == user.is_staff
        and current.get_username() == user.get_username()
    )


def tell(user_id: Any, event: dict[str, Any]) -> None:
    """Send one event to every socket of the account in this process; never fails the caller."""
    layer = get_channel_layer()
    if layer is None or user_id is None:
        return
    try:
        async_to_sync(layer.group_send)(account_group(user_id), event)
    except Exception as exc:  # the sockets' own re-check still catches the change
        log.warning("user %s: sockets not told to re-check (%s)", user_id, exc)


def _user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    fields = kwargs.get("update_fields")
    if created or (fields and set(fields) <= {"last_login"}):
        return  # a new account has no sockets; a login changes nothing they may see
    pk = instance.pk
    transaction.on_commit(lambda: tell(pk, {"type": CHECK}))


def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    pk = instance.pk
    transaction.on_commit(lambda: tell(pk, {"type": CHECK}))


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and key:
        tell(user.pk, {"type": SESSION_ENDED, "session_key": key})


def connect() -> None:
    """Connect the signals (from the app's ready())."""
    model = settings.AUTH_USER_MODEL
    post_save.connect(_user_saved, sender=model, dispatch_uid="nnt-live-user-saved")
    post_delete.connect(_user_deleted, sender=model, dispatch_uid="nnt-live-user-deleted")
    user_logged_out.connect(_logged_out, dispatch_uid="nnt-live-logged-out")
