"""Searching, filtering, sorting and paging simulations: one query for the page and the API.

The runs table's column sorts and `<column>:<op>:<value>` filters are web/simulations/runs.py's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, F, Func, Q, QuerySet, Value
from django.db.models.functions import Lower

from web.simulations import access, runs
from web.simulations.models import STATUSES, Simulation

# Paging past this is refused (API) or clamped: PostgreSQL's OFFSET is a bigint.
MAX_OFFSET = 1_000_000_000

SORTS = {
    "-created": ("-created_at", "index"),
    "created": ("created_at", "index"),
    "name": ("name_lower", "created_at"),
    "-name": ("-name_lower", "-created_at"),
    "progress": ("progress_value", "-created_at"),
    "-progress": ("-progress_value", "-created_at"),
}
SORT_LABELS = {
    "-created": "Newest first",
    "created": "Oldest first",
    "name": "Name A–Z",
    "-name": "Name Z–A",
    "-progress": "Most progress",
    "progress": "Least progress",
}
VISIBLE_STATUSES = STATUSES[:-1]  # "deleted" only on explicit request


@dataclass
class Query:
    """What a user asked for: free text (name or tag), status, tag, sort (an old sort or a
    column key, runs.py), column filters."""

    q: str = ""
    status: str = ""
    tag: str = ""
    sort: str = "-created"
    experiment: uuid.UUID | None = None
    filters: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, params: Any) -> Query:
        """From request.GET or any mapping; an unknown sort falls back to newest first, and
        filters that are not `<column>:<op>:<value>` are left out."""
        sort = params.get("sort") or "-created"
        try:
            experiment = uuid.UUID(params.get("experiment") or "")
        except ValueError:
            experiment = None
        getlist = getattr(params, "getlist", None)
        filters = tuple(getlist("filter")) if getlist else ()
        return cls(
            q=(params.get("q") or "").strip(),
            status=params.get("status") or "",
            tag=(params.get("tag") or "").strip(),
            sort=sort if sort in SORTS or runs.valid_sort(sort) else "-created",
            experiment=experiment,
            filters=tuple(f for f in filters if runs.valid_filter(f)),
        )

    @property
    def filtered(self) -> bool:
        """Whether anything narrows the list."""
        return bool(self.q or self.status or self.tag or self.experiment or self.filters)


def search(user: Any, query: Query) -> QuerySet[Simulation]:
    """The user's simulations (staff: all) matching the query, sorted; a bad sort or filter
    is Invalid (422) naming it.

    Every filter is a bound parameter (LIKE wildcards in `q` are escaped by the ORM); text with a
    NUL character matches nothing, since PostgreSQL cannot store one (and would refuse the query).
    """
    qs = access.visible(user)
    if any("\x00" in text for text in (query.q, query.status, query.tag)):
        return qs.none()
    qs = qs.filter(status=query.status) if query.status else qs.exclude(status="deleted")
    if query.tag:
        qs = qs.filter(tags__contains=[query.tag])
    if query.experiment:
        qs = qs.filter(experiment_id=query.experiment)
    if query.q:
        tags_text = Func(
            F("tags"), Value(" "), function="array_to_string", output_field=CharField()
        )
        qs = qs.annotate(tags_text=tags_text).filter(
            Q(name__icontains=query.q) | Q(tags_text__icontains=query.q)
        )
    qs = runs.narrow(qs, query.filters)
    qs = qs.annotate(name_lower=Lower("name"), progress_value=runs.progress())
    if query.sort in SORTS:  # the first sorts, with their own tie-breakers
        return qs.order_by(*SORTS[query.sort])
    return runs.order(qs, query.sort)


def user_tags(user: Any) -> list[str]:
    """Every tag on the user's visible, not deleted simulations, sorted."""
    rows = access.visible(user).exclude(status="deleted").values_list("tags", flat=True)
    return sorted({t for tags in rows for t in (tags or [])}, key=str.lower)
