"""Accounts as the orchestrators see them, on the compacted topic `nnt.accounts` (key: user id).

The web owns the accounts and publishes one record per user whenever one changes (and all of
them when it starts); each orchestrator keeps the latest record per id. That is all it needs
to check who sent a command (key generation), whether they may act (active, staff), and the
limits it enforces when it creates and starts their runs. A deleted account is a record with
`deleted: true`.
"""

from __future__ import annotations

from pydantic import Field

from schemas.common import Event


class Limits(Event):
    """Per-user limits the orchestrator enforces; None means no limit of that kind."""

    max_concurrent_runs: int | None = Field(default=None, ge=0, description="runs active at once")
    max_queued_runs: int | None = Field(
        default=None, ge=0, description="runs created but not started yet (queued)"
    )
    max_runs_per_experiment: int | None = Field(
        default=None, ge=0, description="simulations one experiment may expand into"
    )
    max_epochs: int | None = Field(default=None, ge=0, description="total_epochs of one run")
    max_memory_bytes: int | None = Field(
        default=None, ge=0, description="memory of all the user's active runs together"
    )
    max_storage_bytes: int | None = Field(
        default=None,
        ge=0,
        description="bytes of the distinct dataset files the user's runs hold (schemas/storage.py)",
    )
    # Lenient bounds on purpose: a record that fails validation is skipped whole (the account
    # then acts no more), so the console and the admin API enforce the useful minimums.
    max_run_memory_bytes: int | None = Field(
        default=None, ge=1, description="memory of one run; lowers the host's NNT_RUN_MEMORY_BYTES"
    )
    max_run_cpus: float | None = Field(
        default=None, gt=0, description="CPUs of one run; lowers the host's NNT_RUN_CPUS"
    )


class AccountRecord(Event):
    """One account: identity, standing, command-key generation and limits."""

    user_id: int = Field(ge=1)
    username: str = Field(max_length=150)
    is_active: bool = True
    is_staff: bool = False
    key_generation: int = Field(default=0, ge=0)
    limits: Limits = Field(default_factory=Limits)
    deleted: bool = False
