"""The runs table as the list page shows it: its columns, which are shown by default, the text
of each cell, and the links of its sortable headers. The data comes from the API's list items
(`/api/simulations`), so the server-rendered first page and the page's live refreshes agree."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from web.simulations import runs
from web.simulations.models import headline

HPARAMS = [
    ("optimizer", "Optimizer", False),
    ("loss", "Loss function", False),
    ("learning_rate", "Learning rate", True),
    ("fold", "Fold", True),
    ("batch_size", "Batch size", True),
]
# Shown by default when they exist: what tells a good run from a bad one at a glance.
FIRST_METRICS = ["val_accuracy", "accuracy", "val_loss", "loss"]
# Later in the list, never shown by default: bookkeeping rather than quality.
LAST_METRICS = {"lr", "learning_rate", "epoch_time_s", "samples_per_s"}
HEALTH = {"healthy": "healthy", "warning": "warning", "failing": "failing", "unknown": "–"}
HEALTH_TITLE = {
    "healthy": "no health flag on the latest recorded tensors",
    "failing": "the run failed, or a metric or tensor is not finite",
    "unknown": "nothing recorded yet",
}
# What each kind of column's filter cell shows before anything is typed
PLACEHOLDERS = {
    "metric": "≥ 0.9",
    "progress": "≥ 0.5",
    "duration": "> 60 (s)",
    "status": "= running",
    "health": "= warning",
}
# The row template new runs are built from (list.js fills it).
BLANK: dict[str, Any] = {
    "id": "", "name": "", "owner": "", "status": "", "epoch": 0, "total_epochs": 0,
    "tags": [], "message": "", "created_at": None,
}  # fmt: skip
OPS = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "contains": ""}


@dataclass
class Column:
    """One column: its API key (for `sort=` and `filter=`), label and how it behaves."""

    key: str
    label: str
    kind: str  # name status progress hp metric health duration tags owner created
    group: str = "Run"
    sub: str = ""  # a second header line (a metric's "best" / "last")
    sortable: bool = True
    numeric: bool = False
    first: str = "asc"  # the direction of a header's first click
    shown: bool = True
    fixed: bool = False  # always shown (the chooser cannot hide it)
    filter_text: str = ""  # this column's active filter, as typed in its filter cell
    sort_href: str = ""
    sorted: str = ""  # "asc" / "desc" when the table is sorted by this column

    @property
    def filterable(self) -> bool:
        """Whether the API filters on this column."""
        return self.sortable

    @property
    def placeholder(self) -> str:
        """An example of what its filter cell takes."""
        return PLACEHOLDERS.get(self.kind, "= value" if self.numeric else "contains")

    @property
    def aria_sort(self) -> str:
        """The header's aria-sort value."""
        return {"asc": "ascending", "desc": "descending"}.get(self.sorted, "none")


@dataclass
class Cell:
    """The text and tooltip of one cell, for the columns drawn as plain text."""

    col: Column
    text: str = ""
    title: str = ""
    cls: str = ""


@dataclass
class Row:
    """One run of the table: its API item and one cell per column."""

    item: dict[str, Any]
    cells: list[Cell] = field(default_factory=list)

    @property
    def percent(self) -> int:
        """Progress in whole percent."""
        total, epoch = self.item.get("total_epochs") or 0, self.item.get("epoch") or 0
        return max(0, min(100, round(100 * epoch / total))) if total else 0

    @property
    def reason(self) -> str:
        """A failed run's reason, in one line."""
        if self.item.get("status") != "failed":
            return ""
        return headline(self.item.get("message") or self.item.get("error") or "")


def fmt(value: Any) -> str:
    """A number as the page's JavaScript writes it: integers whole, else 4 significant digits."""
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value)
    if not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return "–"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def duration(seconds: float | None) -> str:
    """`42s`, `3m 05s`, `2h 04m`, `3d 07h`; an en dash when the run has not started."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 172800:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def metric_order(names: Iterable[str]) -> list[str]:
    """Validation and training accuracy and loss first, bookkeeping (lr, timings) last."""
    names = list(dict.fromkeys(names))
    first = [n for n in FIRST_METRICS if n in names]
    rest = sorted(n for n in names if n not in first and n not in LAST_METRICS)
    return first + rest + sorted(n for n in names if n in LAST_METRICS)


def columns(available: dict[str, list[str]], varying: set[str], staff: bool) -> list[Column]:
    """Every column of the table, with the default visibility: name, status, progress, the
    hyperparameters that vary (`varying`), the best accuracy and loss, health, duration, tags."""
    metrics = metric_order(available.get("metrics") or [])
    preferred = [m for m in metrics if m in FIRST_METRICS] or [
        m for m in metrics if m not in LAST_METRICS
    ][:4]
    cols = [
        Column("name", "Name", "name", fixed=True),
        Column("status", "Status", "status"),
        Column("progress", "Progress", "progress", numeric=True, first="desc"),
    ]
    for name, label, numeric in HPARAMS:  # always offered: new runs may bring them
        cols.append(
            Column(f"hp.{name}", label, "hp", "Hyperparameters", numeric=numeric,
                   shown=name in varying)
        )  # fmt: skip
    for name in metrics:
        goal = runs.goal(name)
        for which in ("best", "last"):
            cols.append(
                Column(f"metric.{name}.{which}", name, "metric", "Metrics", sub=which,
                       numeric=True, first="desc" if goal == "max" else "asc",
                       shown=which == "best" and name in preferred)
            )  # fmt: skip
    cols += [
        Column("health", "Health", "health"),
        Column("duration", "Duration", "duration", numeric=True, first="desc"),
        Column("tags", "Tags", "tags", sortable=False),
    ]
    if staff:
        cols.append(Column("owner", "Owner", "owner", sortable=False))
    cols.append(Column("created", "Created", "created", first="desc", shown=False))
    return cols


def groups(cols: list[Column]) -> list[tuple[str, list[Column]]]:
    """The columns by group, for the column chooser: the run's own, hyperparameters, metrics."""
    out: dict[str, list[Column]] = {}
    for col in cols:
        out.setdefault(col.group, []).append(col)
    return list(out.items())


def show_chosen(cols: list[Column], query: Any) -> None:
    """The column the table is sorted by (unless newest first, the default), and those it is
    filtered on, are shown by default."""
    keys = {f.split(":", 1)[0] for f in query.filters}
    keys |= {query.sort.lstrip("-")} if query.sort != "-created" else set()
    for col in cols:
        col.shown = col.shown or col.key in keys


def link_headers(cols: list[Column], params: Any, sort: str) -> None:
    """Each sortable header's link: sorted by it (its first direction, or the other one when it
    is the current sort), back to the first page, every other parameter kept."""
    current, desc = sort.lstrip("-"), sort.startswith("-")
    for col in cols:
        if not col.sortable:
            continue
        if current == col.key:
            col.sorted = "desc" if desc else "asc"
            flip = "asc" if desc else "desc"
        else:
            flip = col.first
        col.sort_href = "?" + with_params(params, sort=("-" if flip == "desc" else "") + col.key)


def with_params(params: Any, **changes: str | None) -> str:
    """The query string of `params` (a QueryDict) with `changes` applied and the page reset."""
    q = params.copy()
    q.pop("page", None)
    for key, value in changes.items():
        q.pop(key, None)
        if value is not None:
            q[key] = value
    return q.urlencode()


def filter_chips(filters: Sequence[str], params: Any, cols: list[Column]) -> list[dict[str, str]]:
    """The column filters in force, each with a link that removes it; a column's filter cell
    shows what was typed for it."""
    by_key = {c.key: c for c in cols}
    chips = []
    for i, spec in enumerate(filters):
        key, op, value = (spec.split(":", 2) + ["", ""])[:3]
        col = by_key.get(key)
        if col and not col.filter_text:
            col.filter_text = value if op == "contains" else f"{OPS.get(op, op)}{value}"
        rest = params.copy()
        rest.pop("page", None)
        rest.setlist("filter", [f for j, f in enumerate(filters) if j != i])
        label = f"{col.label} {col.sub}".strip() if col else key
        chips.append({"label": label, "op": OPS.get(op) or "~", "value": value,
                      "remove": "?" + rest.urlencode()})  # fmt: skip
    return chips


def api_query(query: Any) -> str:
    """The `/api/simulations` parameters of the page's query (paging left to the caller)."""
    pairs = [(k, getattr(query, k)) for k in ("q", "status", "tag", "sort")]
    pairs += [("experiment", str(query.experiment or ""))]
    pairs += [("filter", f) for f in query.filters]
    return urlencode([(k, v) for k, v in pairs if v])


def rows(items: Sequence[dict[str, Any]], cols: list[Column]) -> list[Row]:
    """One row per item, with the text of every plain-text cell."""
    return [Row(item, [_cell(item, col) for col in cols]) for item in items]


def _cell(item: dict[str, Any], col: Column) -> Cell:
    if col.kind == "hp":
        value = (item.get("hparams") or {}).get(col.key[3:])
        return Cell(col, fmt(value) if value not in (None, "") else "–")
    if col.kind == "metric":
        name, which = col.key[len("metric.") :].rsplit(".", 1)
        summary = (item.get("metrics") or {}).get(name) or {}
        title = ""
        if which == "best" and summary.get("best_epoch") is not None:
            title = f"best at epoch {summary['best_epoch']} (goal: {summary.get('goal', '?')})"
        elif which == "last" and summary.get("epoch") is not None:
            title = f"at epoch {summary['epoch']}"
        return Cell(col, fmt(summary.get(which)), title)
    if col.kind == "duration":
        return Cell(col, duration(item.get("duration_s")))
    if col.kind == "health":
        health = item.get("health") or {}
        verdict = str(health.get("verdict") or "unknown")
        flags = ", ".join(f.replace("_", " ") for f in health.get("flags") or [])
        return Cell(
            col, HEALTH.get(verdict, verdict), flags or HEALTH_TITLE.get(verdict, ""), verdict
        )
    return Cell(col)
