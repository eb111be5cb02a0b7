"""Which lifecycle action each simulation status allows: the one table the web API, the pages'
JavaScript (exported as JSON) and the orchestrator's checks agree on.

A run is acted on by the orchestrator that runs it, so the table is what the orchestrator
carries out (orchestrator/service.py `_pause`, `_resume`, `_stop`, `_delete`):
- pause: a running run (queued and starting ones have no process to pause yet);
- resume: a paused run (in place), or a stopped or failed one (from its last checkpoint);
- stop: any run not yet ended; a queued one stops before it starts;
- delete: any run but a deleted one (a run is deleted once).
`finished` and `deleted` take nothing else.
"""

from __future__ import annotations

from typing import Literal

Action = Literal["pause", "resume", "stop", "delete"]
ACTIONS: tuple[Action, ...] = ("pause", "resume", "stop", "delete")
STATUSES = ("queued", "starting", "running", "paused", "stopped", "finished", "failed", "deleted")

ALLOWED: dict[str, frozenset[str]] = {
    "pause": frozenset({"running"}),
    "resume": frozenset({"paused", "stopped", "failed"}),
    "stop": frozenset({"queued", "starting", "running", "paused"}),
    "delete": frozenset(STATUSES) - {"deleted"},
}


def allowed(action: str, status: str) -> bool:
    """Whether a run in `status` takes `action` (unknown actions and statuses take nothing)."""
    return status in ALLOWED.get(action, frozenset())


def refusal(action: str, status: str) -> str:
    """Why `action` is refused for a run in `status`, and what would work, in one line."""
    if status == "deleted":
        return f"cannot {action} a deleted simulation: it is gone"
    takes = ", ".join(s for s in STATUSES if s in ALLOWED.get(action, frozenset()))
    return f"cannot {action} a {status} simulation; {action} takes {takes} ones"


def actions(status: str) -> list[str]:
    """The actions a run in `status` takes, in ACTIONS order."""
    return [a for a in ACTIONS if allowed(a, status)]


def as_json() -> dict[str, list[str]]:
    """The table as the pages read it: action -> statuses, in lifecycle order."""
    return {a: [s for s in STATUSES if s in ALLOWED[a]] for a in ACTIONS}
