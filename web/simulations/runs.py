"""The runs table's columns: hyperparameters, metric summaries, health and duration of each
run, and sorting and filtering by any of them on the server.

Every column is one SQL expression over the run's row (store/runs_table.py): hyperparameters
read the run's plan or its experiment's configuration, and metrics and health read the
per-run summaries the stream workers keep, by primary key. Here they become Django
expressions, so the ORM sorts, filters and lists runs by them.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any, Literal

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    Expression,
    F,
    Field,
    FloatField,
    IntegerField,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Lower
from django.utils.dateparse import parse_date, parse_datetime

from schemas.status import EarlyStop
from store import diagnoses, runs_table
from store.runs_table import DURATION, HEALTH_FLAGS, HEALTH_RANK, HP_SQL
from web.errors import Invalid
from web.simulations import summary
from web.simulations.models import Simulation

Goal = Literal["min", "max"]
Kind = Literal["text", "number", "time", "health"]
OPS = ("eq", "ne", "lt", "le", "gt", "ge", "contains")
VERDICTS = ("healthy", "warning", "failing")  # their rank; "unknown" is no rank (NULL)
# Metrics named like these are better lower; every other one higher.
LOWER_IS_BETTER = re.compile(
    r"loss|error|mse|mae|mape|msle|hinge|entropy|divergence|poisson|logcosh|log_cosh|time"
)
RUN_INFO = ("learning_rate", "epoch_time_s", "samples_per_s")  # logged with every epoch
HPARAMS = ("optimizer", "loss", "learning_rate", "fold", "batch_size")
MAX_VALUE = 200


class Sql(Expression):
    """A SQL fragment over the run's own columns, written `@column`: Django compiles each, so
    the table keeps whatever alias the query gives it (a subquery renames it); `%s` are bound
    from `params`."""

    def __init__(self, sql: str, params: Sequence[Any] = (), output_field: Field | None = None):
        super().__init__(output_field=output_field)
        self.sql, self.params = sql, tuple(params)
        self.names = tuple(dict.fromkeys(re.findall(r"@(\w+)", sql)))
        self.refs: list[Any] = [F(name) for name in self.names]

    def get_source_expressions(self) -> list[Any]:
        return self.refs

    def set_source_expressions(self, exprs: list[Any]) -> None:
        self.refs = list(exprs)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        cols = dict(zip(self.names, (compiler.compile(r)[0] for r in self.refs), strict=True))
        return "(" + re.sub(r"@(\w+)", lambda m: cols[m[1]], self.sql) + ")", list(self.params)


TEXT, NUMBER = CharField(), FloatField()
SORT_FORMS = (
    "name, status, created, progress, epoch, duration, health, hp.optimizer, hp.loss, "
    "hp.learning_rate, hp.fold, hp.batch_size, hp.epochs, metric.<name>.last or "
    "metric.<name>.best; a leading - sorts descending"
)


def goal(metric: str) -> Goal:
    """Whether a metric is better low (losses, errors, times) or high (everything else)."""
    return "min" if LOWER_IS_BETTER.search(metric.lower()) else "max"


def progress() -> Expression:
    """The fraction of epochs done, 0 when the total is unknown."""
    done = Cast(F("epoch"), FloatField()) / Cast(F("total_epochs"), FloatField())
    return Case(When(total_epochs__gt=0, then=done), default=Value(0.0), output_field=NUMBER)


@dataclass(frozen=True)
class Column:
    """One sortable, filterable column: its expression and the kind of its values."""

    expr: Any
    kind: Kind


def _metric(key: str) -> Column | None:
    """`metric.<name>.last` or `metric.<name>.best` (the name may hold dots)."""
    name, _, which = key.removeprefix("metric.").rpartition(".")
    if not name or which not in ("last", "best") or len(name) > 128 or not name.isprintable():
        return None
    best: runs_table.SummaryColumn = "best_min" if goal(name) == "min" else "best_max"
    sql = runs_table.metric_sql("last" if which == "last" else best)
    return Column(Sql(sql, [name], NUMBER), "number")


def column(key: str) -> Column | None:
    """The column a key names, or None."""
    plain: dict[str, Column] = {
        "name": Column(F("name"), "text"),
        "status": Column(F("status"), "text"),
        "created": Column(F("created_at"), "time"),
        "progress": Column(progress(), "number"),
        "epoch": Column(Cast(F("epoch"), NUMBER), "number"),
        "duration": Column(Sql(DURATION, output_field=NUMBER), "number"),
        "health": Column(Sql(HEALTH_RANK, output_field=IntegerField()), "health"),
    }
    if key in plain:
        return plain[key]
    if key.startswith("hp.") and key[3:] in HP_SQL:
        sql, kind = HP_SQL[key[3:]]
        return Column(Sql(sql, output_field=TEXT if kind == "text" else NUMBER), kind)
    if key.startswith("metric."):
        return _metric(key)
    return None


def order(qs: QuerySet[Simulation], sort: str) -> QuerySet[Simulation]:
    """Sorted by a column key (`-` first: descending); runs without a value come last either
    way, then newest first. Unknown key: Invalid naming `sort`."""
    key = sort.removeprefix("-")
    col = column(key) if "\x00" not in sort else None
    if col is None:
        raise Invalid("unknown sort", {"sort": f"unknown sort {sort[:80]!r}: use {SORT_FORMS}"})
    expr = Lower(col.expr) if key == "name" else col.expr
    first = expr.desc(nulls_last=True) if sort.startswith("-") else expr.asc(nulls_last=True)
    return qs.order_by(first, "-created_at", "index", "id")


def valid_sort(sort: str) -> bool:
    """Whether `sort` names a column."""
    return "\x00" not in sort and column(sort.removeprefix("-")) is not None


def _bad_filter(text: str, why: str) -> Invalid:
    return Invalid(
        "invalid filter",
        {
            "filter": f"{text[:120]!r}: {why}; write <column>:<op>:<value>, op one of "
            f"{', '.join(OPS)}, e.g. hp.optimizer:eq:Adam or metric.val_accuracy.best:ge:0.9"
        },
    )


def _value(text: str, kind: Kind, raw: str) -> Any:
    """The filter's value as its column's type; Invalid naming `filter` otherwise."""
    if kind == "number":
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise _bad_filter(text, f"{raw[:40]!r} is not a number")
        return number
    if kind == "time":
        when = _when(raw)
        if when is None:
            raise _bad_filter(text, f"{raw[:40]!r} is not a date (2025-01-31 or ISO 8601)")
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return raw


def _when(raw: str) -> datetime | None:
    """An ISO 8601 time or a day (its midnight), None for anything else (2025-13-45 too)."""
    try:
        when = parse_datetime(raw)
        day = None if when else parse_date(raw)
    except ValueError:
        return None
    return when or (datetime.combine(day, time(), tzinfo=UTC) if day else None)


def _health(text: str, op: str, raw: str, name: str) -> Q:
    """Health by verdict (ordered healthy < warning < failing; unknown has none), or
    `contains` a flag; `name` is the annotation prefix of this filter."""
    if op == "contains":
        return Q(**{f"{name}_flags__contains": [raw]})
    if raw == "unknown" and op in ("eq", "ne"):
        return Q(**{f"{name}_rank__isnull": op == "eq"})
    if raw not in VERDICTS:
        raise _bad_filter(text, f"health is one of {', '.join(VERDICTS)} or unknown")
    return _compare(f"{name}_rank", op, VERDICTS.index(raw), "number")


LOOKUPS = {"lt": "lt", "le": "lte", "gt": "gt", "ge": "gte"}


def _compare(name: str, op: str, value: Any, kind: Kind) -> Q:
    if op == "contains":
        return Q(**{f"{name}__icontains": value})
    if op in ("eq", "ne"):
        same = Q(**{f"{name}__iexact" if kind == "text" else name: value})
        # "not Adam" includes the runs without an optimizer
        return same if op == "eq" else ~same | Q(**{f"{name}__isnull": True})
    return Q(**{f"{name}__{LOOKUPS[op]}": value})


def narrow(qs: QuerySet[Simulation], filters: Iterable[str]) -> QuerySet[Simulation]:
    """Only the runs passing every `<column>:<op>:<value>` filter; Invalid naming `filter`."""
    for i, text in enumerate(filters):
        key, op, raw = (text.split(":", 2) + ["", ""])[:3]
        col = column(key)
        if col is None or "\x00" in text:
            raise _bad_filter(text, f"unknown column {key[:80]!r} (columns: {SORT_FORMS})")
        if op not in OPS or text.count(":") < 2:
            raise _bad_filter(text, f"unknown op {op[:20]!r}")
        if len(raw) > MAX_VALUE:
            raise _bad_filter(text, f"a value has at most {MAX_VALUE} characters")
        if op == "contains" and col.kind in ("number", "time"):
            raise _bad_filter(text, f"contains applies to text columns, not {key}")
        name = f"filter_{i}"
        if col.kind == "health":
            flags = Sql(HEALTH_FLAGS, output_field=ArrayField(TextField()))
            qs = qs.annotate(**{f"{name}_rank": col.expr, f"{name}_flags": flags})
            qs = qs.filter(_health(text, op, raw, name))
            continue
        qs = qs.annotate(**{name: col.expr}).filter(
            _compare(name, op, _value(text, col.kind, raw), col.kind)
        )
    return qs


def valid_filter(text: str) -> bool:
    """Whether `text` is a filter narrow() takes."""
    try:
        narrow(Simulation.objects.none(), [text])
    except Invalid:
        return False
    return True


def item(sim: Simulation, fields: dict[str, Any]) -> dict[str, Any]:
    """A simulation as the API and the runs table show it, with its runs-table fields."""
    return fields | {
        "id": sim.id,
        "experiment_id": sim.experiment_id,
        "name": sim.name,
        "owner": sim.owner_name,
        "status": sim.status,
        "epoch": sim.epoch,
        "total_epochs": sim.total_epochs,
        "progress": sim.progress,
        "tags": sim.tags,
        "message": sim.message,
        "error": sim.error,
        "created_at": sim.created_at,
        "updated_at": sim.updated_at,
        "started_at": sim.started_at,
        "finished_at": sim.finished_at,
        "config": sim.config,
        "test_metrics": summary.run_test_metrics(sim),
        "early_stop": _early_stop(sim),
    }


def _early_stop_note(sim: Simulation) -> dict[str, Any] | None:
    """The stored reason of a run the early-stop rule ended (projection's `early_stop`)."""
    note = getattr(sim, "early_stop", None)
    return note if sim.status == "stopped" and isinstance(note, dict) else None


def _early_stop(sim: Simulation) -> dict[str, Any] | None:
    """Why the experiment's early-stop rule ended this run, as the API shows it."""
    note = _early_stop_note(sim)
    return {k: note.get(k) for k in EarlyStop.model_fields} if note else None


def items(sims: Sequence[Simulation]) -> list[dict[str, Any]]:
    """item() of each run, their runs-table fields read in one query."""
    fields = details([sim.id for sim in sims])
    return [item(sim, fields.get(sim.id) or nothing()) for sim in sims]


def nothing() -> dict[str, Any]:
    """The runs table's fields of a run with nothing known (one gone meanwhile)."""
    health = {"verdict": "unknown", "flags": [], "diagnoses": []}
    return {"hparams": dict.fromkeys(HP_SQL), "metrics": {}, "health": health, "duration_s": None}


def details(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """The runs table's fields of these runs: hparams, metrics, health and duration_s."""
    if not ids:
        return {}
    fields = {f"hp_{k}": column(f"hp.{k}").expr for k in HP_SQL}  # type: ignore[union-attr]
    rows = Simulation.objects.filter(pk__in=ids).annotate(
        **fields,
        health_rank=Sql(HEALTH_RANK, output_field=IntegerField()),
        health_flags=Sql(HEALTH_FLAGS, output_field=ArrayField(TextField())),
        duration_s=Sql(DURATION, output_field=NUMBER),
    )
    metrics = _metrics(ids)
    with connection.cursor() as cur:
        active = diagnoses.read_active(cur, ids)
    return {
        row["id"]: {
            "hparams": _hparams(row),
            "metrics": metrics.get(row["id"], {}),
            "health": {
                "verdict": "unknown"
                if row["health_rank"] is None
                else VERDICTS[row["health_rank"]],
                "flags": sorted(row["health_flags"] or []),
                "diagnoses": active.get(row["id"], []),
            },
            "duration_s": row["duration_s"],
        }
        for row in rows.values("id", *fields, "health_rank", "health_flags", "duration_s")
    }


def _hparams(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[f"hp_{k}"] for k in HP_SQL}
    for whole in ("fold", "batch_size", "epochs"):
        if out[whole] is not None and float(out[whole]).is_integer():
            out[whole] = int(out[whole])
    return out


def _metrics(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, dict[str, Any]]]:
    """Each run's metric summaries, as the API shows them."""
    out: dict[uuid.UUID, dict[str, dict[str, Any]]] = {}
    with connection.cursor() as cur:
        rows = runs_table.read_summaries(cur, ids)
    for sid, metric, last, last_epoch, low, low_epoch, high, high_epoch in rows:
        aim = goal(metric)
        best, best_epoch = (low, low_epoch) if aim == "min" else (high, high_epoch)
        out.setdefault(sid, {})[metric] = {
            "last": last,
            "best": best,
            "best_epoch": best_epoch,
            "epoch": last_epoch,
            "goal": aim,
        }
    return {
        sid: dict(sorted(m.items(), key=lambda kv: _metric_order(kv[0]))) for sid, m in out.items()
    }


def _metric_order(name: str) -> tuple[bool, int, str]:
    """Logged metrics by name, then the run's own series (learning rate, timings)."""
    return (name in RUN_INFO, RUN_INFO.index(name) if name in RUN_INFO else 0, name)


def columns(qs: QuerySet[Simulation]) -> dict[str, list[str]]:
    """The hyperparameters and metrics that at least one of these runs has."""
    try:
        sql, params = qs.order_by().values("id").query.sql_with_params()
    except EmptyResultSet:  # a search that can never match (e.g. text with a NUL character)
        return {"hparams": [], "metrics": []}
    counts = qs.order_by().aggregate(
        **{k: Count(column(f"hp.{k}").expr) for k in HPARAMS}  # type: ignore[union-attr]
    )
    with connection.cursor() as cur:
        names = runs_table.read_metric_names(cur, sql, params)
    return {
        "hparams": [k for k in HPARAMS if counts[k]],
        "metrics": sorted(names, key=_metric_order),
    }
