"""REST endpoints of the admin console, under /api/admin/ (403 for non-staff)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from web.accounts import quotas
from web.accounts.auth import API_AUTH
from web.console import users
from web.errors import Forbidden
from web.simulations import storage
from web.simulations.listing import MAX_OFFSET
from web.simulations.models import Simulation

router = Router(tags=["admin"], auth=API_AUTH)


class UserFilterIn(Schema):
    """List filters: `staff` and `active` take yes or no; `sort` as on the console page."""

    q: str = ""
    staff: str = ""
    active: str = ""
    sort: str = "username"
    limit: int = 200
    offset: int = 0


class UserOut(Schema):
    """A user as the console lists it."""

    id: int
    username: str
    email: str
    is_staff: bool
    is_active: bool
    date_joined: datetime
    last_login: datetime | None
    simulations: int
    running: int


class UsageOut(Schema):
    """Summed latest resource samples of the user's running simulations."""

    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int | None
    gpu_percent: float | None
    gpu_memory_bytes: int | None
    sampled_runs: int
    oldest_sample: datetime | None


class QuotaOut(Schema):
    """Limits in force; `custom_*` marks values an admin set (others are defaults)."""

    max_concurrent_runs: int
    max_memory_bytes: int
    custom_runs: bool
    custom_memory: bool
    max_queued_runs: int | None = None
    max_runs_per_experiment: int | None = None
    max_epochs: int | None = None
    max_storage_bytes: int | None = None
    max_run_memory_bytes: int | None = None
    max_run_cpus: float | None = None


class QuotaIn(Schema):
    """New limits; null means the default from settings."""

    max_concurrent_runs: int | None = Field(default=None, ge=1, le=10_000)
    max_memory_bytes: int | None = Field(default=None, ge=1, le=2**62)
    max_queued_runs: int | None = Field(
        default=None, ge=0, le=1_000_000, description="null: no limit"
    )
    max_runs_per_experiment: int | None = Field(
        default=None, ge=1, le=1_000_000, description="null: no limit"
    )
    max_epochs: int | None = Field(default=None, ge=1, le=10_000_000, description="null: no limit")
    max_storage_bytes: int | None = Field(
        default=None,
        ge=0,
        le=2**62,
        description="bytes of datasets the user's runs hold; null: no limit",
    )
    max_run_memory_bytes: int | None = Field(
        default=None,
        ge=64 * 1024**2,
        le=2**62,
        description="memory of one run (lowers NNT_RUN_MEMORY_BYTES); null: the host's",
    )
    max_run_cpus: float | None = Field(
        default=None,
        ge=0.1,
        le=1024,
        description="CPUs of one run (lowers NNT_RUN_CPUS); null: the host's",
    )


class UserDetailOut(UserOut):
    """A user with counts by status, current resource use and quota."""

    counts: dict[str, int]
    usage: UsageOut
    quota: QuotaOut
    storage_bytes: int = Field(description="bytes of the datasets the user's runs hold now")


class UserPatchIn(Schema):
    """Fields an admin may change; omitted ones stay as they are."""

    is_staff: bool | None = None
    is_active: bool | None = None


class AdminSimulationOut(Schema):
    """One of the user's simulations."""

    id: uuid.UUID
    name: str
    status: str
    epoch: int
    total_epochs: int
    tags: list[str]
    created_at: datetime


def _staff(request: HttpRequest) -> Any:
    if not request.auth.is_staff:
        raise Forbidden("admin endpoints are for staff users")
    return request.auth


def _out(user: Any, simulations: int | None = None, running: int | None = None) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "is_staff": user.is_staff,
        "is_active": user.is_active,
        "date_joined": user.date_joined,
        "last_login": user.last_login,
        "simulations": getattr(user, "n_simulations", simulations or 0),
        "running": getattr(user, "n_running", running or 0),
    }


def _detail(user: Any) -> dict[str, Any]:
    counts = users.counts(user)
    return _out(user, counts["total"], counts["running"]) | {
        "counts": counts,
        "usage": users.usage(user).__dict__,
        "quota": quotas.effective(user).__dict__,
        "storage_bytes": storage.used_bytes(user),
    }


@router.get("/users", response=list[UserOut])
def list_users(request: HttpRequest, filters: Query[UserFilterIn]) -> list[dict[str, Any]]:
    """Every user with simulation counts; search, filter and sort."""
    _staff(request)
    qs = users.users(filters.q, filters.staff, filters.active, filters.sort)
    limit = max(1, min(filters.limit, 1000))
    offset = max(0, min(filters.offset, MAX_OFFSET))  # OFFSET is a bigint in PostgreSQL
    return [_out(u) for u in qs[offset : offset + limit]]


@router.get("/users/{user_id}", response=UserDetailOut)
def get_user(request: HttpRequest, user_id: int) -> dict[str, Any]:
    """A user's counts (total, running, finished, failed…), current CPU/RAM/GPU use and quota."""
    _staff(request)
    return _detail(users.get_user(user_id))


@router.patch("/users/{user_id}", response=UserDetailOut)
def patch_user(request: HttpRequest, user_id: int, body: UserPatchIn) -> dict[str, Any]:
    """Grant or revoke admin rights, enable or disable (never on oneself)."""
    actor = _staff(request)
    target = users.get_user(user_id)
    if body.is_staff is not None:
        users.set_staff(actor, target, body.is_staff)
    if body.is_active is not None:
        users.set_active(actor, target, body.is_active)
    return _detail(target)


@router.delete("/users/{user_id}", response={204: None})
def delete_user(request: HttpRequest, user_id: int) -> Status[None]:
    """Delete a user: their unfinished runs get `delete`, then their rows go."""
    actor = _staff(request)
    users.delete(actor, users.get_user(user_id))
    return Status(204, None)


@router.get("/users/{user_id}/quota", response=QuotaOut)
def get_quota(request: HttpRequest, user_id: int) -> dict[str, Any]:
    """The user's limits in force."""
    _staff(request)
    return quotas.effective(users.get_user(user_id)).__dict__


@router.put("/users/{user_id}/quota", response=QuotaOut)
def put_quota(request: HttpRequest, user_id: int, body: QuotaIn) -> dict[str, Any]:
    """Set the user's limits (null: back to the default)."""
    _staff(request)
    target = users.get_user(user_id)
    extra = {name: getattr(body, name) for name in quotas.EXTRA}
    return quotas.set_limits(
        target, body.max_concurrent_runs, body.max_memory_bytes, **extra
    ).__dict__


@router.get("/users/{user_id}/simulations", response=list[AdminSimulationOut])
def user_simulations(request: HttpRequest, user_id: int) -> list[Simulation]:
    """The user's simulations (not deleted), newest first."""
    _staff(request)
    target = users.get_user(user_id)
    return list(users.simulations_of(target).exclude(status="deleted")[:1000])
