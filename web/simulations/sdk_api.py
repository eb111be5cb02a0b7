"""REST endpoint of runs tracked from users' own scripts (trainer.sdk, docs/sdk.md).

`POST /api/sdk-runs` creates the simulation row, owned by the caller, and answers with the
run's event key: the stream workers store only events signed with the key of the run they
name (stream_processors/provenance.py), so a script may publish for its own run and no other.
"""

from __future__ import annotations

import logging
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from schemas import auth
from web.accounts import keys, quotas
from web.accounts.auth import API_AUTH
from web.errors import Invalid, Throttled
from web.live import notify
from web.simulations.api import MAX_TAGS, clean_tag
from web.simulations.models import TERMINAL, Simulation

log = logging.getLogger(__name__)
router = Router(tags=["simulations"], auth=API_AUTH)
NAME_MAX = 300  # nnt_simulation.name
# The row's status time: before any event, so the script's first status always applies
# whatever its machine's clock says (the projection ignores events older than status_at).
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class SdkRunIn(Schema):
    """The run a script is about to train."""

    name: str = Field(description="shown in the UI, 1 to 300 characters")
    tags: list[str] = Field(default_factory=list, description=f"at most {MAX_TAGS} tags")
    total_epochs: int = Field(0, ge=0, le=100_000, description="epochs planned; 0: unknown")


class SdkRunOut(Schema):
    """The new run, and the key its events must be signed with (Kafka header `nnt-sig`)."""

    simulation_id: uuid.UUID
    run_key: str = Field(description="hex HMAC key: pass it to TrackerCallback (run_key=)")
    name: str
    owner: str
    tags: list[str]
    total_epochs: int


def clean_name(raw: str) -> str:
    """A run name as stored; Invalid names the field."""
    name = " ".join(raw.split())
    if not name or len(name) > NAME_MAX:
        raise Invalid("invalid name", {"name": f"a name has 1 to {NAME_MAX} characters"})
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise Invalid("invalid name", {"name": "remove the control characters (e.g. NUL)"})
    return name


def clean_tags(raw: list[str]) -> list[str]:
    """Tags as stored, without duplicates; Invalid names the field."""
    tags = list(dict.fromkeys(clean_tag(t) for t in raw))
    if len(tags) > MAX_TAGS:
        raise Invalid("too many tags", {"tags": f"a simulation has at most {MAX_TAGS} tags"})
    return tags


def check_quota(user: Any) -> None:
    """429 naming max_concurrent_runs when the caller's SDK runs not yet ended already fill it.

    No orchestrator sees these runs (they train on the user's own machine), so the web is the
    one place to count them. Call inside the transaction that creates the run: the user's row
    is locked, so two requests at once cannot both take the last place.
    """
    get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
    limit = quotas.effective(user).max_concurrent_runs
    live = (
        Simulation.objects.filter(owner=user, config__source="sdk")
        .exclude(status__in=TERMINAL)
        .count()
    )
    if live < limit:
        return
    message = (
        f"{user.get_username()} has {live} SDK run(s) not ended, the limit of {limit} "
        "concurrent runs (max_concurrent_runs); let one finish, or delete those whose script "
        "is gone (a run stays running until its script reports an end), or ask an admin"
    )
    raise Throttled(message, {"__all__": message})


@router.post("/sdk-runs", response={201: SdkRunOut})
def create_sdk_run(request: HttpRequest, body: SdkRunIn) -> Status[SdkRunOut]:
    """Create a run for your own script (it belongs to you) and get the key that signs its
    events; give both to `TrackerCallback(simulation_id=..., run_key=...)`. Your SDK runs not
    yet ended count against your max_concurrent_runs: past it, 429 naming the limit."""
    user = request.auth
    name, tags = clean_name(body.name), clean_tags(body.tags)
    sid = uuid.uuid4()
    with transaction.atomic():
        check_quota(user)
        sim = Simulation.objects.create(
            id=sid,
            owner=user,
            owner_name=user.get_username(),
            name=name,
            tags=tags,
            total_epochs=body.total_epochs,
            status="starting",
            message="waiting for the script's first event",
            config={"source": "sdk"},
            status_at=NEVER,
        )
        transaction.on_commit(lambda: notify.rows_changed([sim]))
    log.info("simulation %s: created for an SDK script of %s", sid, user.get_username())
    out = SdkRunOut(
        simulation_id=sid,
        run_key=auth.run_key(keys.secret(), sid),
        name=name,
        owner=user.get_username(),
        tags=tags,
        total_epochs=body.total_epochs,
    )
    return Status(201, out)
