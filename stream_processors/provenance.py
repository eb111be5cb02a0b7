"""Which events may become rows: only those signed by their own run, or by an orchestrator.

A run's trainer signs every message it produces with its run key (schemas/auth.py:
HMAC(secret, "run:<simulation id>"), handed to that trainer only), in the Kafka header
`nnt-sig` = hex HMAC-SHA256 of the raw value. An event is stored only when that signature
holds for the simulation the event itself names (not its Kafka key), so a hand-made event
cannot land in another run's charts, and a made-up simulation id has no key at all. Status
events may also be signed with the orchestrator's service key (its transitions, and command
answers that name no simulation); resource samples (`nnt.resources`) only with that key: a
run cannot report its own CPU and memory use.

Cost: one HMAC-SHA256 over the raw value per event (OpenSSL); each run's key is derived once
and kept, ready to use, in a bounded LRU (docs/stream-processing.md has the measured cost).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from schemas import auth

UNSIGNED = "unsigned event"
RUN_KEYS_CACHED = 16_384  # runs whose prepared HMAC is kept (about 800 bytes each)


def bad_signature(simulation_id: uuid.UUID | None) -> str:
    """The dead-letter reason of an event whose signature does not hold."""
    if simulation_id is None:
        return "bad signature for an event of no simulation (only an orchestrator sends those)"
    return f"bad signature for simulation {simulation_id}"


def signature(headers: Any) -> bytes | None:
    """The `nnt-sig` header of a message (a list of (name, value) pairs or a mapping)."""
    if not headers:
        return None
    pairs: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        if name == auth.SIGNATURE_HEADER:
            return bytes(value) if value is not None else None
    return None


def prepared(key: str) -> hmac.HMAC:
    """An HMAC-SHA256 with the key's pads already hashed: each event then costs a copy and
    its own two hash passes (about 1 us for 450 bytes), not the key setup again."""
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


class Provenance:
    """Checks signatures against the keys of one shared secret."""

    def __init__(self, secret: str, cached: int = RUN_KEYS_CACHED) -> None:
        self._secret = secret
        self._service = prepared(auth.service_key(secret, "orchestrator"))
        self.run_mac = functools.lru_cache(maxsize=cached)(self._derive)

    def _derive(self, simulation_id: uuid.UUID) -> hmac.HMAC:
        return prepared(auth.run_key(self._secret, simulation_id))

    def refusal(
        self,
        sig: bytes,
        value: bytes,
        simulation_id: uuid.UUID | None,
        service: bool = False,
        runs: bool = True,
    ) -> str | None:
        """None when `sig` holds for the event's run (unless not `runs`) or, with `service`,
        the orchestrator; else the dead-letter reason."""
        try:
            wanted = bytes.fromhex(sig.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            wanted = b""
        if (
            runs
            and simulation_id is not None
            and _holds(self.run_mac(simulation_id), value, wanted)
        ):
            return None
        if service and _holds(self._service, value, wanted):
            return None
        if not runs:
            return f"bad signature for simulation {simulation_id}: only an orchestrator sends these"
        return bad_signature(simulation_id)


def _holds(base: hmac.HMAC, value: bytes, wanted: bytes) -> bool:
    """Constant-time comparison of the value's HMAC (auth.mac, as bytes) with a signature."""
    mac = base.copy()
    mac.update(value)
    return hmac.compare_digest(mac.digest(), wanted)
