"""Several workers share partitions; killing or stopping one loses nothing and duplicates nothing."""

from __future__ import annotations

import signal
import uuid

import pytest
from conftest import rows

from schemas import topics
from schemas.codecs import dumps
from schemas.epochs import EpochEvent
from tests.streamworker import Worker, produce, until

pytestmark = pytest.mark.integration

COUNTS = (
    "SELECT count(*), count(DISTINCT (simulation_id, metric, epoch, at)) "
    "FROM nnt_epoch_metric WHERE simulation_id = ANY(%s)"
)


def flood(bootstrap: str, sims: list[uuid.UUID], epochs: int) -> int:
    """Produce `epochs` one-metric epochs per simulation; returns the rows expected."""
    produce(
        bootstrap,
        topics.EPOCHS,
        [
            (
                str(sid),
                dumps(
                    EpochEvent(
                        simulation_id=sid, epoch=i, total_epochs=epochs, metrics={"loss": float(i)}
                    )
                ),
            )
            for i in range(1, epochs + 1)
            for sid in sims
        ],
    )
    return len(sims) * epochs


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_it_loses_nothing_when_one_of_two_workers_dies(
    sig: signal.Signals,
    worker: Worker,
    kafka_bootstrap: str,
    web_tables: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    second = Worker(kafka_bootstrap, web_tables, tmp_path_factory.mktemp("second-worker"))
    try:
        second.wait_ready()
        sims = [uuid.uuid4() for _ in range(12)]  # keys spread over all six partitions
        total = flood(kafka_bootstrap, sims, 2000)
        until(lambda: rows(web_tables, COUNTS, sims)[0][0] > total // 10, 120, second)
        stopped_at = rows(web_tables, COUNTS, sims)[0][0]
        code = second.stop(sig)
    finally:
        second.stop(signal.SIGKILL)
    assert "database connected" in second.text()  # the second worker wrote too
    assert stopped_at < total, "stop the worker mid-stream: send more events"
    if sig == signal.SIGTERM:
        assert code == 0
    until(lambda: rows(web_tables, COUNTS, sims)[0][0] == total, 180, worker)
    assert rows(web_tables, COUNTS, sims) == [(total, total)]
