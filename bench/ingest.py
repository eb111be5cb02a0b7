"""Sustained ingest of epoch-metric points: Kafka -> Faust worker -> PostgreSQL, against a raw
binary COPY of the same rows into the same database, and against the trackers people would
pick instead (bench/peers.py: MLflow's tracking store on the same PostgreSQL server, Aim's
local repository) logging the same runs' points, in the same run.

`python -m bench.ingest` prints one JSON line. The pipeline figure runs from the first
message produced to the moment every row is in the database and the worker's committed
offsets have reached the end of nnt.epochs (consumer lag back to zero), after a warm-up of
other runs' events through the same broker and worker (sustained ingest, not start-up).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import confluent_kafka
import psycopg

from bench.services import kafka, run_key
from infra import timeseries
from schemas import auth, topics
from schemas.epochs import EpochEvent
from schemas.epochs import encode as encode_epoch
from stream_processors import rows as row_builder


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A PostgreSQL URL with the time-series schema (NNT_TEST_DATABASE_URL, or a fresh one)."""
    if os.environ.get("NNT_TEST_DATABASE_URL"):
        timeseries.apply(os.environ["NNT_TEST_DATABASE_URL"])
        yield os.environ["NNT_TEST_DATABASE_URL"]
        return
    from tests import services

    with tempfile.TemporaryDirectory(prefix="nnt-bench-pg-") as tmp:
        Path(tmp).chmod(0o755)  # the embedded PostgreSQL runs as another user
        url, running = services.start_postgres(Path(tmp))
        try:
            yield url
        finally:
            running.stop()


PEER_SIMULATIONS = 20  # MLflow and Aim log the first 20 runs (60,000 points): they are slow
GROUP = "nntracker-stream"  # the Faust app id is its consumer group
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "precision", "recall", "auc")


def events(simulations: int, epochs: int) -> list[EpochEvent]:
    """Epoch events of `simulations` runs: 7 metrics + learning rate, time, throughput = 10 points."""
    t0 = datetime.now(UTC)
    out = []
    for _ in range(simulations):
        sid = uuid.uuid4()
        for e in range(1, epochs + 1):
            out.append(
                EpochEvent(
                    simulation_id=sid,
                    epoch=e,
                    total_epochs=epochs,
                    learning_rate=0.001,
                    epoch_time_s=1.5,
                    samples_per_s=40_000.0,
                    at=t0 + timedelta(milliseconds=e),
                    metrics={m: 1.0 / (e + i) for i, m in enumerate(METRICS)},
                )
            )
    return out


Message = tuple[bytes, bytes, list[tuple[str, bytes]]]


def signed(batch: list[EpochEvent]) -> list[Message]:
    """(key, value, headers) of each event, signed with its run's key as a trainer signs it."""
    keys = {sid: run_key(sid) for sid in {e.simulation_id for e in batch}}
    out = []
    for event in batch:
        value = encode_epoch(event)
        sig = auth.mac(keys[event.simulation_id], value).encode()
        out.append((str(event.simulation_id).encode(), value, [(auth.SIGNATURE_HEADER, sig)]))
    return out


def produce(bootstrap: str, messages: list[Message]) -> None:
    """Produce the signed events keyed by simulation and wait for the broker."""
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10_000}
    )
    for key, value, headers in messages:
        while True:
            try:
                producer.produce(topics.EPOCHS, key=key, value=value, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0


class Lag:
    """Messages of `topic` not yet committed by the worker's group, asked through one
    consumer (a new one per question took longer than the commit interval it measures)."""

    def __init__(self, bootstrap: str, topic: str = topics.EPOCHS) -> None:
        self.consumer = confluent_kafka.Consumer(
            {"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False}
        )
        meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
        self.parts = [confluent_kafka.TopicPartition(topic, p) for p in meta.partitions]

    def __call__(self) -> int:
        total = 0
        for tp in self.consumer.committed(self.parts, timeout=10):
            low, high = self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            total += high - max(tp.offset, low)
        return total

    def close(self) -> None:
        self.consumer.close()


def lag(bootstrap: str, topic: str = topics.EPOCHS) -> int:
    """One question to a fresh consumer (Lag): for benchmarks that ask seldom."""
    asked = Lag(bootstrap, topic)
    try:
        return asked()
    finally:
        asked.close()


def soon(probe: Callable[[], bool], timeout: float, worker: Any) -> None:
    """Poll `probe` every 50 ms (tests.streamworker.until polls every 200 ms: a fifth of a
    second on a figure of a few seconds); fail with the worker's log after `timeout`."""
    from tests.streamworker import until

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.05)
    until(probe, 1, worker)


def count(url: str, sims: list[uuid.UUID]) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM nnt_epoch_metric WHERE simulation_id = ANY(%s)", (sims,)
        ).fetchone()[0]  # type: ignore[index]


class Finished:
    """Whether every run of a round has its last epoch stored, asked every 50 ms through one
    connection and one small query: a count of the round's rows grows to 600,000 index
    entries and a connection per question forks a backend, either one taking the CPU the
    measured worker and PostgreSQL need. Runs' summaries (nnt_run_metric) are written in
    the transaction of their rows, and a run's events are committed in order (one partition,
    batches in order), so a run whose every metric reached its last epoch is complete."""

    def __init__(self, url: str, batch: list[EpochEvent]) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.sims = sorted({e.simulation_id for e in batch})
        self.last = max(e.epoch for e in batch)
        self.series = len({(e.simulation_id, m) for e in batch for m in e.points()})

    def __call__(self) -> bool:
        found = self.conn.execute(
            "SELECT count(*) FROM nnt_run_metric WHERE simulation_id = ANY(%s) "
            "AND last_epoch >= %s",
            (self.sims, self.last),
        ).fetchone()
        return found is not None and found[0] >= self.series

    def close(self) -> None:
        self.conn.close()


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settled(bootstrap: str, members: int) -> bool:
    """Whether the worker group is stable with `members` members (a rebalance is over)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    group = admin.describe_consumer_groups([GROUP])[GROUP].result(timeout=10)
    return (
        group.state == confluent_kafka.ConsumerGroupState.STABLE and len(group.members) == members
    )


WARM_UP_SIMULATIONS = 20  # a tenth of the measured runs, through the same worker first
ROUNDS = 3  # measured rounds (the median counts: this 2-core machine is noisy)


def pipeline(
    bootstrap: str,
    url: str,
    home: Path,
    rounds: list[list[EpochEvent]],
    workers: int = 1,
    before_each: Callable[[int], None] | None = None,
) -> list[tuple[float, float]]:
    """Per round of events: seconds from its first produced message to every row stored and
    lag zero, and the workers' CPU seconds meanwhile (the 2-core machine is shared: CPU is
    the steadier figure). `before_each(i)` runs before round i, off the clock.

    Sustained ingest: the same workers take every round, after a warm-up of other runs'
    events through the same broker (a freshly started JVM compiles its hot paths, a fresh
    worker fills its caches); each clock starts once everything before it is stored and
    committed."""
    from tests.streamworker import Worker, until

    warm = events(WARM_UP_SIMULATIONS, max(e.epoch for e in rounds[0]))
    # Signed before the workers start: they read the same secret.
    warm_messages, messages = signed(warm), [signed(batch) for batch in rounds]
    running: list[Any] = []
    out = []
    try:
        for n in range(workers):
            running.append(Worker(bootstrap, url, home / f"worker-{workers}-{n}"))
            running[-1].wait_ready()
        worker = running[0]
        until(lambda: settled(bootstrap, workers), 120, worker)
        lag = Lag(bootstrap)
        until(lambda: lag() == 0, 120, worker)  # leftovers of earlier runs first
        produce(bootstrap, warm_messages)
        warm_sims, warm_points = sorted({e.simulation_id for e in warm}), stored_points(warm)
        until(lambda: count(url, warm_sims) >= warm_points, 600, worker)
        until(lambda: lag() == 0, 120, worker)
        for i, (batch, signed_batch) in enumerate(zip(rounds, messages, strict=True)):
            if before_each is not None:
                before_each(i)
            sims, points = sorted({e.simulation_id for e in batch}), stored_points(batch)
            finished = Finished(url, batch)
            t0, c0 = time.perf_counter(), sum(cpu_s(w.proc.pid) for w in running)
            produce(bootstrap, signed_batch)
            soon(finished, 600, worker)
            t1, c1 = time.perf_counter(), sum(cpu_s(w.proc.pid) for w in running)
            finished.close()
            stored = count(url, sims)  # at once: the probe's reasoning, checked every round
            if stored != points:
                raise AssertionError(f"round {i}: {stored} rows stored of {points} when done")
            soon(lambda: lag() == 0, 60, worker)
            t2 = time.perf_counter()
            # Offsets are committed every second: lag reaching zero up to 1 s after the rows
            # is the commit interval, not ingest work.
            out.append((max(t1, t2 - 1.0) - t0, c1 - c0))
        lag.close()
    finally:
        for w in running:
            w.stop()
    return out


def stored_points(batch: list[EpochEvent]) -> int:
    """The nnt_epoch_metric rows of `batch`."""
    return sum(len(e.points()) for e in batch)


def raw_copy(url: str, batch: list[EpochEvent]) -> float:
    """Seconds to binary-COPY the same rows (fresh simulation ids) into nnt_epoch_metric."""
    fresh = {sid: uuid.uuid4() for sid in {e.simulation_id for e in batch}}
    data = [(fresh[r[0]], *r[1:]) for r in row_builder.epoch_rows(batch)]
    table = row_builder.EPOCH_METRIC
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                f"COPY {table.name} ({', '.join(table.columns)}) FROM STDIN (FORMAT BINARY)"
            ) as cp,
        ):
            cp.set_types(list(table.types))
            for row in data:
                cp.write_row(row)
        conn.commit()
        return time.perf_counter() - t0


def settle(url: str) -> None:
    """The same database state before every measured round, off the clock: the rows written
    so far vacuumed and analysed (autovacuum would start on them mid-round) and flushed by a
    checkpoint (one falling due mid-round writes them all out meanwhile)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {row_builder.EPOCH_METRIC.name}")
        conn.execute("CHECKPOINT")


def guarded(measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A peer's figures, or the error that stopped it (our own figures still count)."""
    try:
        return measure()
    except Exception:
        return {"error": traceback.format_exc(limit=3)[-1500:]}


def against_peers(url: str, batch: list[EpochEvent], ours: float) -> dict[str, Any]:
    """MLflow and Aim logging the first PEER_SIMULATIONS runs of `batch` (they are slow: a
    subsample, the same runs, epochs and metric names), and our points/s over theirs."""
    from bench import peers

    keep = set(list(dict.fromkeys(e.simulation_id for e in batch))[:PEER_SIMULATIONS])
    sample = [e for e in batch if e.simulation_id in keep]
    found = {
        "mlflow": guarded(lambda: peers.mlflow_ingest(url, sample)),
        "aim": guarded(lambda: peers.aim_ingest(sample)),
    }
    out: dict[str, Any] = {"peers": found}
    for name, figures in found.items():
        if "points_per_s" in figures:
            out[f"ingest_vs_{name}_ratio"] = round(ours / figures["points_per_s"], 2)
    return out


def run(simulations: int = 200, epochs: int = 300) -> dict[str, Any]:
    """Measure ours, raw COPY and the peers; returns points/s of each and the ratios (the
    median of ROUNDS rounds, each against a raw COPY of its own rows just before it)."""
    rounds = [events(simulations, epochs) for _ in range(ROUNDS)]
    points = stored_points(rounds[0])
    copies: list[float] = []

    def copy_round(url: str, batch: list[EpochEvent]) -> None:
        settle(url)
        copies.append(raw_copy(url, batch))
        settle(url)

    with kafka() as bootstrap, database() as url, tempfile.TemporaryDirectory() as home:
        one = pipeline(
            bootstrap, url, Path(home), rounds, before_each=lambda i: copy_round(url, rounds[i])
        )
        # The same events of fresh runs through two workers: nnt.epochs has 6 partitions.
        again = [events(simulations, epochs) for _ in range(ROUNDS)]
        two = pipeline(
            bootstrap, url, Path(home), again, workers=2, before_each=lambda _: settle(url)
        )
        pipe_s = statistics.median(s for s, _ in one)
        peers = against_peers(url, rounds[0], points / pipe_s)
    copy_s = statistics.median(copies)
    two_s = statistics.median(s for s, _ in two)
    return {
        "bench": "ingest",
        "events": len(rounds[0]),
        "points": points,
        "points_per_event": points // len(rounds[0]),
        "rounds": ROUNDS,
        "ingest_points_per_s": round(points / pipe_s),
        "raw_copy_points_per_s": round(points / copy_s),
        "ingest_vs_raw_copy_ratio": round(
            statistics.median(c / s for c, (s, _) in zip(copies, one, strict=True)), 3
        ),
        "ingest_s": round(pipe_s, 2),
        "raw_copy_s": round(copy_s, 2),
        "ingest_points_per_s_rounds": [round(points / s) for s, _ in one],
        "raw_copy_points_per_s_rounds": [round(points / c) for c in copies],
        "worker_cpu_us_per_point": round(
            statistics.median(cpu for _, cpu in one) / points * 1e6, 2
        ),
        "ingest_two_workers_points_per_s": round(points / two_s),
        "two_workers_vs_one_ratio": round(pipe_s / two_s, 2),
        "load_average": os.getloadavg()[0],
        **peers,
    }


if __name__ == "__main__":
    print(json.dumps(run()))
