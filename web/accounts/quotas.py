"""Per-user quotas: an admin's override, else the defaults from settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from web.accounts.models import Quota


@dataclass(frozen=True)
class Limits:
    """The limits that apply to a user; `custom` marks fields an admin set."""

    max_concurrent_runs: int
    max_memory_bytes: int
    custom_runs: bool
    custom_memory: bool
    # No defaults for these: None means no limit (the orchestrator enforces what is set).
    max_queued_runs: int | None = None
    max_runs_per_experiment: int | None = None
    max_epochs: int | None = None
    max_storage_bytes: int | None = None
    # None: the orchestrator's NNT_RUN_MEMORY_BYTES / NNT_RUN_CPUS (a limit only lowers them).
    max_run_memory_bytes: int | None = None
    max_run_cpus: float | None = None


# The limits with no default in settings (None: no limit, or the host's per-run resources).
EXTRA = (
    "max_queued_runs",
    "max_runs_per_experiment",
    "max_epochs",
    "max_storage_bytes",
    "max_run_memory_bytes",
    "max_run_cpus",
)


def defaults() -> tuple[int, int]:
    """(max_concurrent_runs, max_memory_bytes) from settings."""
    return settings.NNT_QUOTA_MAX_CONCURRENT_RUNS, settings.NNT_QUOTA_MAX_MEMORY_BYTES


def effective(user: Any) -> Limits:
    """The user's limits, falling back to the defaults field by field."""
    row = Quota.objects.filter(user=user).first()
    runs, memory = defaults()
    own_runs = row.max_concurrent_runs if row else None
    own_memory = row.max_memory_bytes if row else None
    return Limits(
        max_concurrent_runs=own_runs if own_runs is not None else runs,
        max_memory_bytes=own_memory if own_memory is not None else memory,
        custom_runs=own_runs is not None,
        custom_memory=own_memory is not None,
        **{name: getattr(row, name) if row else None for name in EXTRA},
    )


def set_limits(
    user: Any,
    max_concurrent_runs: int | None,
    max_memory_bytes: int | None,
    **extra: float | None,
) -> Limits:
    """Store an admin's override (None: back to the default, or no limit for EXTRA)."""
    unknown = set(extra) - set(EXTRA)
    if unknown:
        raise TypeError(f"unknown limits: {sorted(unknown)}")
    defaults: dict[str, float | None] = {
        "max_concurrent_runs": max_concurrent_runs,
        "max_memory_bytes": max_memory_bytes,
    }
    Quota.objects.update_or_create(user=user, defaults=defaults | extra)
    return effective(user)
