"""The runs table's SQL: each column as one expression over a run's row, and its reads.

Hyperparameters read the run's plan (`nnt_simulation.config`, the SimulationPlan dump) or its
experiment's configuration (`nnt_experiment.config`); metrics and health read the per-run
summaries the stream workers keep (`nnt_run_metric`, `nnt_run_health`, store/summaries.py)
by primary key. Sorting 10,000 runs by a metric thus reads 10,000 summary rows, never the
epoch metrics themselves. Nothing here writes.

A column's expression is a fragment over the run's own `nnt_simulation` row, its columns
written `@column`: web/simulations/runs.py compiles each into the Django query that sorts,
filters or lists runs, so the row keeps whatever alias the query gives it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from store import diagnoses

if TYPE_CHECKING:
    from _typeshed.dbapi import DBAPICursor

HpKind = Literal["text", "number"]
SummaryColumn = Literal["last", "best_min", "best_max"]


def number(jsonb: str) -> str:
    """A JSON number as float8, NULL for anything else or out of float8's range (a cast of
    a string or of 1e400 would fail the whole query)."""
    return (
        f"CASE WHEN jsonb_typeof({jsonb}) = 'number' THEN CASE "
        f"WHEN ({jsonb})::numeric = 0 THEN 0::float8 "
        f"WHEN abs(({jsonb})::numeric) BETWEEN 1e-300 AND 1e300 THEN ({jsonb})::numeric::float8 "
        "END END"
    )


def single(doc: str, key: str) -> str:
    """The only item of the grid list `key` of an experiment configuration, as jsonb: runs
    created by a Kafka client keep the experiment's configuration rather than their plan."""
    return (
        f"CASE WHEN jsonb_typeof({doc} -> '{key}') = 'array' THEN "
        f"CASE WHEN jsonb_array_length({doc} -> '{key}') = 1 THEN {doc} -> '{key}' -> 0 END END"
    )


_EXPERIMENT_BATCH = number("e.config -> 'batch_size'")
_LEARNING_RATE = number("@config -> 'learning_rate'")
_BATCH_SIZE = number("@config -> 'batch_size'")
# Each hyperparameter column: its expression and the kind of its values.
HP_SQL: dict[str, tuple[str, HpKind]] = {
    "optimizer": (
        "coalesce(@config #>> '{optimizer,optimizer}', "
        f"({single('@config', 'optimizers')}) ->> 'optimizer')",
        "text",
    ),
    "loss": (
        "coalesce(@config #>> '{loss,loss_function}', "
        f"({single('@config', 'loss_functions')}) ->> 'loss_function')",
        "text",
    ),
    "learning_rate": (
        f"coalesce({_LEARNING_RATE}, {number(single('@config', 'learning_rates'))})",
        "number",
    ),
    "fold": (number("@config -> 'fold'"), "number"),
    # The plan has no batch size: the experiment's configuration (or the run's own, for a
    # run created by a Kafka client) has it.
    "batch_size": (
        "coalesce((SELECT "
        + _EXPERIMENT_BATCH
        + " FROM nnt_experiment e WHERE e.id = @experiment_id), "
        + _BATCH_SIZE
        + ")",
        "number",
    ),
    "epochs": ("nullif(@total_epochs, 0)::float8", "number"),
}
# The health rank (2 failing, 1 warning, 0 healthy; NULL unknown). A run the trainer
# diagnosed: its active diagnoses decide (store/diagnoses.py); one never diagnosed (an older
# SDK): its latest tensors' health flags.
HEALTH_RANK = f"""CASE WHEN @status = 'failed' THEN 2 ELSE (
    SELECT CASE WHEN h.diagnosed_epoch IS NOT NULL THEN {diagnoses.DIAGNOSED_RANK}
                WHEN h.nonfinite_metric OR 'nonfinite' = ANY(h.flags) THEN 2
                WHEN cardinality(h.flags) > 0 THEN 1 ELSE 0 END
    FROM nnt_run_health h WHERE h.simulation_id = @id) END"""
HEALTH_FLAGS = """SELECT CASE WHEN h.nonfinite_metric THEN array_append(h.flags, 'nonfinite_metric')
                   ELSE h.flags END
    FROM nnt_run_health h WHERE h.simulation_id = @id"""
DURATION = (
    "CASE WHEN @started_at IS NOT NULL THEN "
    "greatest(0, extract(epoch FROM coalesce(@finished_at, now()) - @started_at))::float8 END"
)
# One summary of one metric (the metric's name bound as its parameter).
METRIC = "SELECT m.{column} FROM nnt_run_metric m WHERE m.simulation_id = @id AND m.metric = %s"
SUMMARIES_SQL = """
SELECT simulation_id, metric, last, last_epoch, best_min, min_epoch, best_max, max_epoch
FROM nnt_run_metric WHERE simulation_id = ANY(%s::uuid[])
"""
METRIC_NAMES_SQL = "SELECT DISTINCT metric FROM nnt_run_metric WHERE simulation_id IN ({runs})"


class MetricSummary(NamedTuple):
    """One metric of one run: its last value and its lowest and highest, with their epochs."""

    simulation_id: uuid.UUID
    metric: str
    last: float | None
    last_epoch: int | None
    best_min: float | None
    min_epoch: int | None
    best_max: float | None
    max_epoch: int | None


def metric_sql(column: SummaryColumn) -> str:
    """The expression of one summary column of a metric (the name bound as `%s`)."""
    return METRIC.format(column=column)


def read_summaries(cursor: DBAPICursor, ids: Sequence[uuid.UUID]) -> list[MetricSummary]:
    """The metric summaries of these runs."""
    cursor.execute(SUMMARIES_SQL, [list(ids)])
    return [MetricSummary(*row) for row in cursor.fetchall()]


def read_metric_names(cursor: DBAPICursor, runs_sql: str, params: Sequence[Any]) -> list[str]:
    """The metrics at least one run has, of the runs whose ids `runs_sql` (a query of one
    column, with `params`) selects."""
    cursor.execute(METRIC_NAMES_SQL.format(runs=runs_sql), params)
    return [row[0] for row in cursor.fetchall()]
