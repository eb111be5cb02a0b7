"""Who sent a command or an event: keys derived from one secret, and HMAC-SHA256 signatures.

One secret (`NNT_COMMAND_SECRET`, shared by the web, the orchestrators and the stream workers)
derives every key, so no key is ever stored or sent between components:

- a user's command key: HMAC(secret, "user:<id>:<generation>"); the user reads it from the
  API (`GET /api/command-key`) and signs commands with it, with any client (kcat + openssl);
  the web bumps `generation` (on password change, disable, or on request) to revoke it;
- a service's key: HMAC(secret, "service:<name>") for commands a component sends itself;
- a run's event key: HMAC(secret, "run:<simulation id>"), handed to that run's trainer only,
  which signs each event it produces (Kafka header `nnt-sig`).

A key is the lower-case hex of the HMAC; it signs as its ASCII text, which is what
`openssl dgst -sha256 -hmac KEY` does, so a shell can sign a command.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings

SIGNATURE_HEADER = "nnt-sig"  # Kafka header of a signed event
MAX_AGE_S = 300.0  # a command issued longer ago (or that far in the future) is stale


def derive(secret: str, purpose: str) -> str:
    """The hex key for `purpose` ("user:12:0", "service:orchestrator", "run:<uuid>")."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def user_key(secret: str, user_id: int, generation: int) -> str:
    """The command key of one account at one key generation."""
    return derive(secret, f"user:{user_id}:{generation}")


def service_key(secret: str, name: str) -> str:
    """The command key of a component ("orchestrator", "web")."""
    return derive(secret, f"service:{name}")


def run_key(secret: str, simulation_id: uuid.UUID) -> str:
    """The key a run's trainer signs its events with."""
    return derive(secret, f"run:{simulation_id}")


def mac(key: str, data: bytes) -> str:
    """Hex HMAC-SHA256 of `data` under a hex key (used as its ASCII text)."""
    return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


def matches(key: str, data: bytes, signature: str) -> bool:
    """Constant-time check of a signature."""
    return hmac.compare_digest(mac(key, data), signature.strip().lower())


def payload_digest(experiment: dict[str, Any] | None) -> str:
    """sha256 of an experiment payload in canonical JSON (sorted keys, no spaces); "" if none."""
    if experiment is None:
        return ""
    text = json.dumps(experiment, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def signing_text(
    kind: str,
    command_id: uuid.UUID,
    target: uuid.UUID,
    principal: str,
    key_id: int,
    issued_at: datetime,
    digest: str = "",
) -> bytes:
    """What a command's signature covers: `type|command_id|target|principal|key_id|unix|digest`.

    `target` is the simulation id (the experiment id for create/check); `unix` the whole
    seconds of `issued_at`; `digest` the payload digest of create/check, else empty.
    """
    seconds = int(issued_at.timestamp())
    parts = (kind, str(command_id), str(target), principal, str(key_id), str(seconds), digest)
    return "|".join(parts).encode()


SECRET_FILE = "command-secret"


def load_secret(value: str | None, home: Path) -> str:
    """NNT_COMMAND_SECRET when set, else `$NNT_HOME/command-secret` (made once, mode 0600).

    Components that share NNT_HOME (the local stack, the tests) thus share one secret with no
    setup; hosts that share nothing must all be given the same NNT_COMMAND_SECRET.
    """
    if value:
        return value
    path = home / SECRET_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another component made it first
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
    for _ in range(50):  # the maker may not have written it yet
        text = path.read_text().strip()
        if text:
            return text
        time.sleep(0.02)
    raise ValueError(f"{path} is empty; delete it or set NNT_COMMAND_SECRET")


class CommandSecretSetting(BaseSettings):
    """`NNT_COMMAND_SECRET`, declared once for the web, the orchestrators and the stream
    workers (each settings class also declares its own `nnt_home`)."""

    nnt_home: Path = Field(default=Path("~/.local/share/nntracker"))
    nnt_command_secret: str | None = Field(
        default=None,
        description="secret every key derives from (schemas/auth.py): users' command keys, the "
        "services' keys and each run's event key. Unset: $NNT_HOME/command-secret, made once; "
        "hosts that share no NNT_HOME need the same value in the web, the orchestrators and "
        "the stream workers",
    )

    def command_secret(self) -> str:
        """The shared secret (NNT_COMMAND_SECRET, or the file under NNT_HOME)."""
        return load_secret(self.nnt_command_secret, self.nnt_home)
