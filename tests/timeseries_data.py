"""A small run's time-series rows, written as the stream workers write them (one binary COPY
through stream_processors.sink, INSERT ... ON CONFLICT for a replay), and fresh databases with
the time-series schema in either form, for the TimescaleDB and native-partitioning tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from infra import timeseries
from schemas.diagnosis import FATAL, TITLES, Diagnosis, Evidence, LayerEvidence, TrendEvidence
from schemas.epochs import EpochEvent
from schemas.tensors import encode_array, split
from store import diagnoses
from store.schema import HYPERTABLES
from store.sink import Sink
from store.tables import Row, Table
from stream_processors import rows

# Months before any test runs: every chunk is older than every policy's age, so a test can
# run a policy now and see it act on all of them.
T0 = datetime(2025, 3, 1, tzinfo=UTC)
EPOCHS = 12
EPOCH_EVERY = timedelta(hours=6)  # 12 epochs over 3 days: several one-day tensor chunks
CHUNK_BYTES = 512  # small tensor chunks, so one tensor spans several rows as large ones do


def database_url(pg_url: str, name: str) -> str:
    """`pg_url` with another database name."""
    return urlunsplit(urlsplit(pg_url)._replace(path="/" + name))


def empty_database(pg_url: str, prefix: str) -> str:
    """A new, empty database on the server of `pg_url`; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(pg_url, name)


def new_database(pg_url: str, prefix: str, timescaledb: bool | None) -> str:
    """A new database on the server of `pg_url` with the time-series schema in the form asked
    (True: hypertables, False: native partitions); returns its URL."""
    url = empty_database(pg_url, prefix)
    timeseries.apply(url, timescaledb=timescaledb)
    return url


def kernel(epoch: int, shape: tuple[int, ...] = (64, 16)) -> np.ndarray:
    """Seeded values that zstd cannot shrink much: payloads of several chunks."""
    return np.random.default_rng(epoch).normal(size=shape).astype(np.float32)


def tensor_stats(
    values: np.ndarray, flags: list[str], bins: int = 8, cosine_prev: float = 0.5
) -> dict[str, Any]:
    """The statistics a trainer reports with a tensor, computed from its values."""
    flat = values.astype(np.float64).ravel()
    counts, edges = np.histogram(flat, bins=bins)
    return {
        "mean": float(flat.mean()),
        "std": float(flat.std()),
        "min": float(flat.min()),
        "max": float(flat.max()),
        "norm": float(np.linalg.norm(flat)),
        "zero_fraction": float(np.mean(flat == 0)),
        "nonfinite": 0,
        "cosine_prev": cosine_prev,
        "hist_counts": counts.tolist(),
        "hist_edges": edges.tolist(),
        "flags": flags,
    }


def tensor_rows(
    sim: uuid.UUID,
    layer: tuple[int, str],
    kind: str,
    variable: str,
    epoch: int,
    values: np.ndarray,
    with_values: bool = True,
    t0: datetime = T0,
) -> list[Row]:
    """The nnt_tensor rows of one tensor: its chunks, statistics on chunk 0 (rows.TENSOR);
    `with_values` False: statistics only (activations)."""
    at = t0 + epoch * EPOCH_EVERY
    parts = split(encode_array(values), CHUNK_BYTES) if with_values else [b""]
    stats = tensor_stats(values, ["dead_units"] if kind == "activation" and epoch == 2 else [])
    return [
        (
            sim,
            layer[0],
            layer[1],
            kind,
            variable,
            epoch,
            i,
            len(parts) if with_values else 0,
            "float32",
            list(values.shape) if with_values else [],
            "zstd",
            part if with_values else None,
            Jsonb(stats) if i == 0 else None,
            False,
            at,
        )
        for i, part in enumerate(parts)
    ]


def run_rows(sim: uuid.UUID, epochs: int = EPOCHS, t0: datetime = T0) -> dict[Table, list[Row]]:
    """Everything one run of a digits MLP writes, epoch by epoch from `t0`: metrics, batch
    points, kernels, biases, gradients, activation statistics, status and resource samples."""
    out: dict[Table, list[Row]] = {t: [] for t in (rows.EPOCH_METRIC, rows.BATCH_METRIC)}
    out |= {t: [] for t in (rows.TENSOR, rows.STATUS_EVENT, rows.RESOURCE)}
    for e in range(1, epochs + 1):
        at = t0 + e * EPOCH_EVERY
        for metric, value in {"loss": 2.0 / e, "accuracy": 1 - 1 / (e + 1), "auc": e / 20}.items():
            out[rows.EPOCH_METRIC].append((sim, e, metric, value, at))
        out[rows.EPOCH_METRIC].append((sim, e, "learning_rate", 0.01, at))
        for step in range(20):
            out[rows.BATCH_METRIC].append((sim, e, step, "loss", 2.0 / e + step / 100, at))
        hidden = (2, "hidden")
        for kind, variable, values in (
            ("kernel", "mlp/hidden/kernel", kernel(e)),
            ("bias", "mlp/hidden/bias", np.full(16, e, np.float32)),
            ("gradient", "mlp/hidden/kernel", kernel(e + 100) * 0.01),
        ):
            out[rows.TENSOR] += tensor_rows(sim, hidden, kind, variable, e, values, t0=t0)
        acts = np.maximum(kernel(e + 200, (32, 16)), 0)
        out[rows.TENSOR] += tensor_rows(
            sim, hidden, "activation", "hidden/output", e, acts, with_values=False, t0=t0
        )
        for second in range(0, 6 * 3600, 600):
            sample_at = at - EPOCH_EVERY + timedelta(seconds=second)
            out[rows.RESOURCE].append((sim, sample_at, 50.0 + e, 10**8 + e, None, None, None))
    for i, status in enumerate(("queued", "running", "finished")):
        out[rows.STATUS_EVENT].append((sim, t0 + i * epochs * EPOCH_EVERY, status, 0, "", None))
    return out


def write(url: str, tables: dict[Table, list[Row]]) -> dict[str, int]:
    """Write through the stream workers' sink (COPY; ON CONFLICT DO NOTHING on a replay);
    returns the rows each table gained."""

    async def go() -> dict[str, int]:
        sink = Sink(url)
        written: dict[str, int] = {}
        try:
            for table, batch in tables.items():

                async def work(conn: psycopg.AsyncConnection[tuple]) -> int:
                    return await sink.copy(conn, table, batch)  # noqa: B023 - awaited at once

                written[table.name] = await sink.run(work)
        finally:
            await sink.close()
        return written

    return asyncio.run(go())


def diagnosis(problem: str, first: int, last: int) -> Diagnosis:
    """One diagnosis as the trainer reports it at epoch `last`, about layers dense and dense_1."""
    return Diagnosis(
        problem=problem,  # type: ignore[arg-type]
        severity="fatal" if problem in FATAL else "warning",
        title=TITLES[problem],
        summary=f"{TITLES[problem]} since epoch {first}",
        fix=f"what to do about {problem}",
        layers=["dense", "dense_1"],
        first_epoch=first,
        last_epoch=last,
        evidence={"ratio": 1e-6 * last},
    )


def diagnosed_epoch(
    sim: uuid.UUID, epoch: int, problems: list[str] | None, t0: datetime = T0
) -> EpochEvent:
    """Logged epoch `epoch` with two layers' evidence and the diagnoses of `problems` (each
    first seen at epoch 1; None: not diagnosed)."""
    evidence = Evidence(
        epoch=epoch,
        layers=[
            LayerEvidence(layer_index=i, layer_name=name, activation="relu", grad_norm=i + epoch)
            for i, name in enumerate(("dense", "dense_1"))
        ],
        trend=TrendEvidence(loss=2.0 / epoch, first_loss=2.0, nonfinite=["loss"] * (epoch > 9)),
    )
    found = None if problems is None else [diagnosis(p, 1, epoch) for p in problems]
    return EpochEvent(
        simulation_id=sim, epoch=epoch, total_epochs=EPOCHS, metrics={"loss": 2.0 / epoch},
        at=t0 + epoch * EPOCH_EVERY, evidence=evidence, diagnoses=found,
    )  # fmt: skip


def write_diagnosed(url: str, *batches: list[EpochEvent]) -> None:
    """The evidence and diagnoses of epoch events, each batch merged in its own transaction
    as the stream workers merge them (stream_processors.agents.write_epochs)."""

    async def go() -> None:
        sink = Sink(url)
        try:
            for events in batches:

                async def work(conn: psycopg.AsyncConnection[tuple]) -> None:
                    await sink.copy(conn, rows.EVIDENCE, rows.evidence_rows(events))  # noqa: B023
                    batch = rows.diagnosis_rows(events)  # noqa: B023 - awaited at once
                    await diagnoses.merge(conn, batch.runs, batch.rows)

                await sink.run(work)
        finally:
            await sink.close()

    asyncio.run(go())


def as_json(value: Any) -> Any:
    """A jsonb value as psycopg hands it out, comparable across databases."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def compress_everything(url: str) -> tuple[int, int]:
    """Turn every chunk of every hypertable columnar: (chunks in all, of them nnt_tensor's).
    Fails if any chunk stayed row-store."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in HYPERTABLES:
            conn.execute(
                "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks(%s) c",
                (table,),
            )
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE hypertable_name = 'nnt_tensor'), "
            "count(*) FILTER (WHERE NOT is_compressed) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = ANY(%s)",
            (list(HYPERTABLES),),
        ).fetchone()
    assert row is not None and row[2] == 0, f"{row[2] if row else '?'} chunks not compressed"
    return int(row[0]), int(row[1])
