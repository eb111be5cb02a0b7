"""PostgreSQL restarts (same port, same data directory) while the worker persists a stream of
events: the worker waits and retries, and every acknowledged event is stored exactly once."""

from __future__ import annotations

import time

import pytest

from tests.integration.faults.conftest import (
    AckedProducer,
    Service,
    Stream,
    assert_stored_exactly_once,
    stored_epochs,
)  # fmt: skip
from tests.streamworker import until

pytestmark = pytest.mark.integration
DOWN_S = 4.0


def test_it_loses_and_duplicates_nothing_when_postgresql_restarts_under_the_worker(
    stream: Stream, broker: Service, database: Service
) -> None:
    url, worker = database.address, stream.worker
    producer = AckedProducer(broker.address)
    try:
        until(lambda: sum(map(len, stored_epochs(url, producer.sims).values())) > 100, 60, worker)
        database.running.stop()  # SIGINT: PostgreSQL's fast shutdown ends every session now
        acked_at_stop = producer.total()
        time.sleep(DOWN_S)  # events keep coming while the database is away
        assert producer.total() > acked_at_stop + 100, "the stream kept going"
        down_log = worker.text()
        database.running.start_again()
        until(lambda: producer.total() > acked_at_stop + 400, 60)
    finally:
        acked = producer.finish()
    assert "database write failed" in down_log or "database unreachable" in down_log, (
        "the worker did not notice the database was gone\n" + down_log[-2000:]
    )
    assert producer.failed == []
    assert_stored_exactly_once(url, broker.address, acked, worker)
    assert stream.worker is worker and stream.alive(), "the same worker rode it out"
