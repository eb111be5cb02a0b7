"""The stream worker is SIGKILLed in the middle of a batch while events keep streaming, and a
new one takes its place: every event the broker acknowledged is stored exactly once."""

from __future__ import annotations

import signal

import psycopg
import pytest

from tests.integration.faults.conftest import (
    WORKER_APP,
    AckedProducer,
    Service,
    Stream,
    assert_stored_exactly_once,
    rows,
    stored_epochs,
)  # fmt: skip
from tests.streamworker import until

pytestmark = pytest.mark.integration

# The worker's backend waiting at our lock inside its batch's COPY (its transaction is open).
BLOCKED_IN_BATCH = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
    "AND wait_event_type = 'Lock' AND query LIKE 'COPY nnt_epoch_metric%%'"
)


def test_it_stores_every_acknowledged_event_once_when_the_worker_is_killed_mid_batch(
    stream: Stream, broker: Service, database: Service
) -> None:
    url = database.address
    producer = AckedProducer(broker.address)
    try:
        until(lambda: sum(map(len, stored_epochs(url, producer.sims).values())) > 100, 60,
              stream.worker)  # fmt: skip
        with psycopg.connect(url) as blocker:
            # Every COPY into the table now waits at this lock: the worker's next batch stops
            # inside its open transaction, and the kill lands in the middle of it.
            blocker.execute("LOCK TABLE nnt_epoch_metric IN SHARE MODE")
            until(lambda: rows(url, BLOCKED_IN_BATCH, WORKER_APP)[0][0] > 0, 60, stream.worker)
            killed = stream.worker
            killed.proc.send_signal(signal.SIGKILL)
            code = killed.proc.wait(30)
            acked_at_kill = producer.total()
            blocker.rollback()
        stored_at_kill = sum(map(len, stored_epochs(url, producer.sims).values()))
        stream.start()  # another worker of the same group takes the partitions back
        until(lambda: producer.total() > acked_at_kill + 200, 60)  # streaming goes on
    finally:
        acked = producer.finish()
    assert code == -signal.SIGKILL
    assert stored_at_kill < acked_at_kill, "the kill came while events were still unstored"
    assert producer.failed == []
    assert_stored_exactly_once(url, broker.address, acked, stream.worker)
    assert stream.alive()
