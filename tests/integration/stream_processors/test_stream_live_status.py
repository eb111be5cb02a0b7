"""Live status updates reach the owner's list pages: the orchestrator's events (pause, stop,
delete) name no owner, so the update carries the one the status projection read from the run's
row; a deleted run stays deleted on the pages even when a late `running` comes in the same
batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from schemas import topics
from schemas.codecs import dumps
from schemas.live import LiveUpdate
from schemas.status import StatusEvent
from tests.streamworker import Reader, Worker, produce, rows, until

pytestmark = pytest.mark.integration


def _statuses(reader: Reader, sid: uuid.UUID) -> list[LiveUpdate]:
    updates = [LiveUpdate.model_validate_json(v) for v in reader.poll(str(sid))]
    return [u for u in updates if u.kind == "status"]


def test_a_deleted_run_reaches_its_owners_lists(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid, t0 = uuid.uuid4(), datetime.now(UTC)
    reader = Reader(kafka_bootstrap, topics.LIVE, f"test-{sid}")
    running = StatusEvent(simulation_id=sid, status="running", epoch=1, total_epochs=9, at=t0,
                          owner="ada", name="live run", source="trainer")  # fmt: skip
    try:
        produce(kafka_bootstrap, topics.STATUS, [(str(sid), dumps(running))])
        until(lambda: _statuses(reader, sid) or None, 60, worker)
        # as the orchestrator sends it: no owner
        deleted = StatusEvent(simulation_id=sid, status="deleted", message="deleted by ada",
                              at=t0 + timedelta(seconds=1), source="orchestrator")  # fmt: skip
        produce(kafka_bootstrap, topics.STATUS, [(str(sid), dumps(deleted))])
        updates = until(lambda: _statuses(reader, sid)[1:] or None, 60, worker)
    finally:
        reader.close()
    [update] = updates
    assert update.status is not None and update.status.status == "deleted"
    assert update.owner == "ada", "the owner's list pages listen on the owner's group"
    status = "SELECT status FROM nnt_simulation WHERE id = %s"
    assert rows(web_tables, status, sid) == [("deleted",)]


def test_a_late_running_in_the_same_batch_does_not_undelete_the_pages(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid, t0 = uuid.uuid4(), datetime.now(UTC)
    reader = Reader(kafka_bootstrap, topics.LIVE, f"test-{sid}")
    events = [
        StatusEvent(simulation_id=sid, status="running", epoch=1, at=t0, owner="bo"),
        StatusEvent(simulation_id=sid, status="deleted", at=t0 + timedelta(seconds=1)),
        # the trainer's last word, stamped by a clock ahead of the orchestrator's
        StatusEvent(
            simulation_id=sid, status="running", epoch=2, at=t0 + timedelta(seconds=5), owner="bo"
        ),  # fmt: skip
    ]
    try:
        produce(kafka_bootstrap, topics.STATUS, [(str(sid), dumps(e)) for e in events])
        status = "SELECT status FROM nnt_simulation WHERE id = %s"
        until(lambda: rows(web_tables, status, sid) == [("deleted",)] or None, 60, worker)

        def last() -> str | None:
            updates = _statuses(reader, sid)
            newest = updates[-1].status if updates else None
            return newest.status if newest else None

        until(lambda: last() == "deleted", 60, worker)  # the pages' last word: deleted
    finally:
        reader.close()
