"""Status projection: which nnt.status events move a simulation's row; the statement that
moves it, and its parameters, are store.projection's."""

from __future__ import annotations

from schemas.status import StatusEvent

COMMAND_ANSWERS = frozenset({"accepted", "rejected"})


def is_lifecycle(event: StatusEvent) -> bool:
    """Whether the event moves a simulation (command answers only go to history)."""
    return event.simulation_id is not None and event.status not in COMMAND_ANSWERS
