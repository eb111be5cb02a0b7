"""Keep the orchestrators' view of accounts current (web/accounts/records.py), and revoke a
user's command key when their password changes or their account is disabled."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save

from web.accounts import keys, records
from web.accounts.models import CommandKey, Quota

REVOKE = "_nnt_revoke_key"


def _before_user_save(sender: Any, instance: Any, **_: Any) -> None:
    """Note a password change or a disable: the key handed out before must stop working."""
    if instance.pk is None:
        return
    old = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if old is None:
        return
    disabled = old["is_active"] and not instance.is_active
    setattr(instance, REVOKE, disabled or old["password"] != instance.password)


def _after_user_save(sender: Any, instance: Any, **_: Any) -> None:
    if getattr(instance, REVOKE, False):
        setattr(instance, REVOKE, False)
        keys.rotate(instance)  # publishes through the CommandKey signal
    transaction.on_commit(lambda: records.publish(instance))


def _after_user_delete(sender: Any, instance: Any, **_: Any) -> None:
    user_id, name = instance.pk, instance.get_username()
    transaction.on_commit(lambda: records.publish_deleted(user_id, name))


def _after_account_row_save(sender: Any, instance: Any, **_: Any) -> None:
    """A quota or a key generation changed: send the owner's record again."""
    user = instance.user
    transaction.on_commit(lambda: records.publish(user))


def connect() -> None:
    """Wire the handlers (AccountsConfig.ready)."""
    user = get_user_model()
    pre_save.connect(_before_user_save, sender=user, dispatch_uid="nnt-accounts-pre")
    post_save.connect(_after_user_save, sender=user, dispatch_uid="nnt-accounts-post")
    post_delete.connect(_after_user_delete, sender=user, dispatch_uid="nnt-accounts-delete")
    for model in (Quota, CommandKey):
        post_save.connect(
            _after_account_row_save, sender=model, dispatch_uid=f"nnt-accounts-{model.__name__}"
        )
