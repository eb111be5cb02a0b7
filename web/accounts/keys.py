"""Command keys: what proves a command's sender to the orchestrators (schemas/auth.py).

The web signs every command it sends with the key of the user it acts for; a user reads the
same key from `GET /api/command-key` to sign commands with any Kafka client. Bumping the
key's generation (on request, on a password change, when the account is disabled) revokes
every key handed out before.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from django.conf import settings

from schemas import auth
from schemas.commands import CommandBase
from web.accounts.models import CommandKey

C = TypeVar("C", bound=CommandBase)


@cache
def secret() -> str:
    """The shared secret: NNT_COMMAND_SECRET, or the file under NNT_HOME (made once)."""
    return auth.load_secret(settings.NNT_COMMAND_SECRET, settings.NNT_HOME)


def generation(user: Any) -> int:
    """The user's current key generation (0 until first revoked)."""
    row = CommandKey.objects.filter(user=user).only("generation").first()
    return row.generation if row is not None else 0


def key_of(user: Any) -> tuple[str, int]:
    """(hex key, generation) the user signs commands with."""
    gen = generation(user)
    return auth.user_key(secret(), user.pk, gen), gen


def sign(command: C, user: Any) -> C:
    """`command` signed as `user` (its `issued_by` set to their name for display)."""
    key, gen = key_of(user)
    named = command.model_copy(update={"issued_by": user.get_username()})
    signed: C = named.signed(f"user:{user.pk}", key, gen)
    return signed


def rotate(user: Any) -> int:
    """Revoke the user's key: its generation goes up by one; returns the new generation."""
    row, _ = CommandKey.objects.get_or_create(user=user)
    row.generation += 1
    row.save(update_fields=["generation", "updated_at"])
    return row.generation
