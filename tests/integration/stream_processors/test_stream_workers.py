"""Two workers share the partitions and both store events; a worker killed (or stopped) in the
middle of a batch and then restarted leaves exactly one row per event sent."""

from __future__ import annotations

import re
import signal
import uuid
from pathlib import Path

import confluent_kafka
import psycopg
import pytest

from schemas import topics
from schemas.codecs import dumps
from schemas.epochs import EpochEvent
from schemas.epochs import decode as decode_epoch
from tests.streamworker import Worker, produce, rows, until

pytestmark = pytest.mark.integration

COUNTS = (
    "SELECT count(*), count(DISTINCT (simulation_id, metric, epoch, at)) "
    "FROM nnt_epoch_metric WHERE simulation_id = ANY(%s)"
)
STORED = re.compile(r"stored (\d+) events of nnt\.epochs from partitions \[([\d, ]+)\]")
# The second worker's backend, blocked inside its batch's COPY (its transaction is open).
BLOCKED_IN_BATCH = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
    "AND wait_event_type = 'Lock' AND query LIKE 'COPY nnt_epoch_metric%%'"
)


def flood(bootstrap: str, sims: list[uuid.UUID], first: int, last: int) -> int:
    """Produce one-metric epochs first..last per simulation; returns the rows expected."""
    produce(
        bootstrap,
        topics.EPOCHS,
        [
            (
                str(sid),
                dumps(
                    EpochEvent(
                        simulation_id=sid, epoch=i, total_epochs=last, metrics={"loss": float(i)}
                    )
                ),
            )
            for i in range(first, last + 1)
            for sid in sims
        ],
    )
    return len(sims) * (last - first + 1)


def stored(log: str) -> tuple[int, set[int]]:
    """Epoch events a worker's log reports stored, and from which partitions."""
    found = [(int(n), {int(p) for p in parts.split(",")}) for n, parts in STORED.findall(log)]
    return sum(n for n, _ in found), set().union(*(p for _, p in found))


def missing(bootstrap: str, pg_url: str, sims: list[uuid.UUID], last: int) -> str:
    """Which epochs are not stored, with the partition and offsets their messages have."""
    have = {
        (sid, epoch)
        for sid, epoch in rows(
            pg_url,
            "SELECT simulation_id, epoch FROM nnt_epoch_metric WHERE simulation_id = ANY(%s)",
            sims,
        )
    }
    gone = {(str(sid), e) for sid in sims for e in range(1, last + 1) if (sid, e) not in have}
    where: dict[int, list[int]] = {}
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id":
        f"diag-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"})  # fmt: skip
    consumer.subscribe([topics.EPOCHS])
    idle = 0
    while idle < 5:
        msg = consumer.poll(1.0)
        if msg is None:
            idle += 1
            continue
        if msg.error() is None and msg.key() is not None:
            try:  # other tests' messages share the topic, some undecodable on purpose
                event = decode_epoch(msg.value())
            except ValueError:
                continue
            if (msg.key().decode(), event.epoch) in gone:
                where.setdefault(msg.partition(), []).append(msg.offset())
    consumer.close()
    spans = {p: (min(o), max(o), len(o)) for p, o in sorted(where.items())}
    return f"{len(gone)} epochs not stored; by partition (first, last, count): {spans}"


def named(pg_url: str, name: str) -> str:
    """pg_url with an application_name, to find the worker's connection in pg_stat_activity."""
    return f"{pg_url}{'&' if '?' in pg_url else '?'}application_name={name}"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_it_stores_each_event_once_when_a_worker_dies_mid_batch_and_restarts(
    sig: signal.Signals,
    worker: Worker,
    kafka_bootstrap: str,
    web_tables: str,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NNT_STREAM_REPORT_S", "1")
    app_name = f"nnt-second-{uuid.uuid4().hex[:6]}"
    home: Path = tmp_path_factory.mktemp("second-worker")
    first_log_from = len(worker.text())
    second = Worker(kafka_bootstrap, named(web_tables, app_name), home)
    restarted: Worker | None = None
    try:
        second.wait_ready()
        # The first worker is ready with its new share too (events that arrive while it is
        # still recovering can stall its partitions until the next rebalance: Faust 0.15.3).
        until(lambda: "Worker ready" in worker.text()[first_log_from:], 120, worker)
        sims = [uuid.uuid4() for _ in range(12)]  # keys spread over all six partitions
        first_part = flood(kafka_bootstrap, sims, 1, 200)
        # Both workers store their share of a first burst (the second one's log says so)...
        until(
            lambda: rows(web_tables, COUNTS, sims)[0][0] == first_part and stored(second.text())[0],
            120,
            second,
            worker,
        )
        with psycopg.connect(web_tables) as blocker:
            # ...then every new COPY waits at this lock: the second worker's batch of the next
            # burst stops inside its open transaction, and the signal lands in the middle of it.
            blocker.execute("LOCK TABLE nnt_epoch_metric IN SHARE MODE")
            total = first_part + flood(kafka_bootstrap, sims, 201, 2000)
            until(lambda: rows(web_tables, BLOCKED_IN_BATCH, app_name)[0][0] > 0, 120, second)
            stopped_at = rows(web_tables, COUNTS, sims)[0][0]  # first burst only
            second.proc.send_signal(sig)
            if sig == signal.SIGKILL:
                second.proc.wait(60)
            blocker.rollback()  # a stopping worker finishes its batch once the lock is gone
        code = second.proc.wait(90)
        second_count, second_parts = stored(second.text())
        # Restart it: it rejoins the group and takes its share of the partitions again.
        restarted = Worker(kafka_bootstrap, named(web_tables, app_name), home)
        restarted.wait_ready()
        try:
            until(lambda: rows(web_tables, COUNTS, sims)[0][0] >= total, 180, worker, restarted)
        except AssertionError as exc:
            raise AssertionError(
                f"{missing(kafka_bootstrap, web_tables, sims, 2000)}\n{exc}"
            ) from exc
        assert rows(web_tables, COUNTS, sims) == [(total, total)]
    finally:
        second.stop(signal.SIGKILL)
        if restarted is not None:
            restarted.stop()
    assert stopped_at == first_part < total  # signalled with rows present, not all
    if sig == signal.SIGTERM:
        assert code == 0
    else:
        assert code == -signal.SIGKILL
    first_count, first_parts = stored(worker.text()[first_log_from:])
    assert second_count > 0 and second_parts, "the second worker stored nothing"
    assert first_count > 0 and first_parts, "the first worker stored nothing"
    assert second_parts <= set(range(topics.PARTITIONS[topics.EPOCHS]))
