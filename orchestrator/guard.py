"""Who sent a command, and whether they may: checked here, where runs are made, for every client.

A command is acted on only when its signature proves its principal (schemas/auth.py), it is
fresh (issued within MAX_AGE_S of when Kafka stored it, so a replay is stale), and the
principal may act: an active account on its own simulations (staff: on any), or this
service itself. Accounts come from the compacted topic `nnt.accounts` (schemas/accounts.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from schemas import auth, codecs
from schemas.accounts import AccountRecord, Limits
from schemas.commands import CommandBase

log = logging.getLogger(__name__)
SERVICES = frozenset({"orchestrator"})  # components that sign their own commands


class Refused(Exception):
    """A command that must not be acted on; the message says why (for its status event)."""


@dataclass
class Caller:
    """The proven sender of a command."""

    user_id: int | None
    username: str
    is_staff: bool = False
    service: str | None = None
    limits: Limits = field(default_factory=Limits)

    def may_act_on(self, owner_id: int | None) -> bool:
        """Owners act on their runs, staff and this service on any."""
        return (
            self.service is not None
            or self.is_staff
            or (owner_id is not None and owner_id == self.user_id)
        )


class Accounts:
    """The latest record of every account, as read from `nnt.accounts`."""

    def __init__(self) -> None:
        self.by_id: dict[int, AccountRecord] = {}
        self.lock = threading.Lock()

    def apply(self, value: bytes | None) -> None:
        """Take one record (a bad one is logged and skipped)."""
        try:
            record = codecs.loads(AccountRecord, value or b"")
        except ValidationError as exc:
            log.warning("skipped an account record that does not parse: %s", exc.errors()[:1])
            return
        with self.lock:
            self.by_id[record.user_id] = record

    def get(self, user_id: int) -> AccountRecord | None:
        """The account, or None when unknown or deleted."""
        with self.lock:
            record = self.by_id.get(user_id)
        return None if record is None or record.deleted else record


class Guard:
    """Authenticates commands against the accounts and the shared secret."""

    def __init__(self, secret: str, accounts: Accounts) -> None:
        self.secret, self.accounts = secret, accounts
        # Reads nnt.accounts up to its end (set by the consumer loop): a record published just
        # before the command (a new user, a new key) is then known before we refuse.
        self.refresh: Callable[[], None] = lambda: None

    def admit(self, command: CommandBase, stored_at: datetime | None) -> Caller:
        """The proven caller, or Refused naming why (unsigned, bad signature, stale, disabled)."""
        kind, _, ident = command.principal.partition(":")
        if not command.signature or not kind:
            raise Refused(
                "unauthenticated command: sign it with your command key (principal, key_id, "
                "signature; see docs/security.md, 'Commands from any Kafka client')"
            )
        if kind == "service" and ident in SERVICES:
            self._verify(command, auth.service_key(self.secret, ident))
            self._fresh(command, stored_at)
            return Caller(None, ident, service=ident)
        if kind != "user" or not ident.isdigit():
            raise Refused(f"unknown principal {command.principal[:40]!r}; use 'user:<your id>'")
        return self._user(command, int(ident), stored_at)

    def _user(self, command: CommandBase, user_id: int, stored_at: datetime | None) -> Caller:
        account = self.accounts.get(user_id)
        if account is None or command.key_id > account.key_generation:
            self.refresh()
            account = self.accounts.get(user_id)
        if account is None:
            raise Refused(f"user {user_id} has no account here")
        if command.key_id != account.key_generation:
            raise Refused(
                f"command key {command.key_id} of user {user_id} was revoked; get the current "
                "one from GET /api/command-key"
            )
        self._verify(command, auth.user_key(self.secret, user_id, account.key_generation))
        self._fresh(command, stored_at)
        if not account.is_active:
            raise Refused(f"account {account.username!r} is disabled")
        return Caller(user_id, account.username, account.is_staff, limits=account.limits)

    def _verify(self, command: CommandBase, key: str) -> None:
        if not auth.matches(key, command.signing_text(), command.signature):
            raise Refused(
                f"bad signature for {command.principal}: the command was changed, or signed "
                "with another key"
            )

    def _fresh(self, command: CommandBase, stored_at: datetime | None) -> None:
        """Issued close to when Kafka stored it: a stored command replayed later is stale."""
        if stored_at is None:
            return
        age = abs((stored_at - command.issued_at).total_seconds())
        if age > auth.MAX_AGE_S:
            raise Refused(
                f"stale command: issued {age:.0f} s away from when Kafka received it (limit "
                f"{auth.MAX_AGE_S:.0f} s); send a new one with a fresh command_id and issued_at"
            )
