"""REST endpoints of recorded data: metrics, tensors, model summary, comparisons, export,
trained model."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Query, Router, Schema

from web.errors import Invalid, NotFound
from web.simulations import (
    access,
    compare,
    export,
    listing,
    metrics,
    summary,
    tensors,
    trained,
)

router = Router(tags=["simulation data"])
DEFAULT_POINTS = 1000


class PointsIn(Schema):
    """`max_points` downsamples each series with LTTB (first and last points kept)."""

    max_points: int | None = Field(None, ge=0, description="LTTB downsampling; none or 0: raw")


class HistOut(Schema):
    """Histograms of all epochs on one grid: `density[i][j]` = fraction of values in bin j."""

    edges: list[float]
    density: list[list[float]]


class TensorSeriesOut(Schema):
    """The per-epoch history of one layer variable."""

    key: str
    layer_index: int
    layer_name: str
    kind: str
    variable: str
    shape: list[int]
    epochs: list[int]
    flags: list[list[str]]
    stats: dict[str, list[float | None]]
    hist: HistOut | None = Field(description="null when asked with histograms=false")


class TensorsIn(Schema):
    """Which tensors, and whether with their histograms (a page first reads statistics only)."""

    kind: str | None = Field(None, description="kernel, bias, weight, gradient or activation")
    histograms: bool = Field(True, description="false: statistics and flags only, hist null")
    key: list[str] | None = Field(
        None, description="only these variables (repeatable), as `key` of an earlier answer"
    )


class ValuesIn(Schema):
    """One variable (its `key` from /tensors) and how many values per epoch to sample."""

    key: str
    max_values: int = Field(2000, ge=1, le=20000)
    max_epochs: int = Field(40, ge=1, le=500)


class ValuesOut(Schema):
    """The same random subset of a variable's values at each recorded epoch."""

    layer_name: str
    kind: str
    variable: str
    epochs: list[int]
    index: list[int]
    values: list[list[float | None]]
    size: int
    shape: list[int]


class LayerOut(Schema):
    """One layer of the model summary."""

    name: str
    type: str
    output_shape: str
    params: int | None
    activation: str | None
    variables: dict[str, list[int]]


class SummaryOut(Schema):
    """Layers, output shapes and parameter counts; final test metrics."""

    name: str
    class_name: str
    layers: list[LayerOut]
    total: int | None
    counted: bool
    test_metrics: dict[str, float]


class CompareIn(PointsIn):
    """The other simulation (A is the one in the path)."""

    other: uuid.UUID


class CompareOut(Schema):
    """Per metric: epochs both runs logged, A, B and A − B."""

    other: uuid.UUID
    other_name: str
    metrics: dict[str, dict[str, list[float | int | None]]]


class TagAggregatesIn(PointsIn):
    """A tag carried by some of the caller's simulations."""

    tag: str = Field(min_length=1, max_length=64)


class TagAggregatesOut(Schema):
    """Per metric and epoch: count, mean, min, max, std over the tag's runs."""

    tag: str
    simulations: int
    metrics: dict[str, dict[str, list[float | int | None]]]


def _points(value: int | None) -> int | None:
    return value if value else None


@router.get("/simulations/{simulation_id}/metrics", response=dict[str, dict[str, list]])
def get_metrics(
    request: HttpRequest, simulation_id: uuid.UUID, params: Query[PointsIn]
) -> dict[str, dict[str, list]]:
    """Logged epoch metrics as `{metric: {"epochs": [...], "values": [...]}}`."""
    sim = access.get_visible(request.auth, simulation_id)
    return metrics.read(sim.id, _points(params.max_points))


@router.get("/simulations/{simulation_id}/summary", response=SummaryOut)
def get_summary(request: HttpRequest, simulation_id: uuid.UUID) -> dict[str, Any]:
    """The model's layers, output shapes and parameter counts, and final test metrics."""
    sim = access.get_visible(request.auth, simulation_id)
    model = sim.experiment.model_json if sim.experiment else {}
    out = summary.model_summary(model or {}, tensors.parameter_counts(sim.id))
    return out | {"test_metrics": summary.run_test_metrics(sim)}


@router.get("/simulations/{simulation_id}/tensors", response=list[TensorSeriesOut])
def get_tensors(
    request: HttpRequest, simulation_id: uuid.UUID, params: Query[TensorsIn]
) -> list[dict[str, Any]]:
    """Per layer variable: statistics, health flags and histograms over epochs."""
    sim = access.get_visible(request.auth, simulation_id)
    if params.key is not None and len(params.key) > tensors.MAX_KEYS:
        raise Invalid(
            "too many keys", {"key": f"at most {tensors.MAX_KEYS} per request: ask in parts"}
        )
    try:
        return tensors.history(sim.id, params.kind or None, params.histograms, params.key)
    except ValueError as exc:
        raise Invalid("invalid key", {"key": str(exc)}) from exc


@router.get("/simulations/{simulation_id}/tensors/values", response=ValuesOut)
def get_tensor_values(
    request: HttpRequest, simulation_id: uuid.UUID, params: Query[ValuesIn]
) -> dict[str, Any]:
    """Sampled values of one variable per recorded epoch (for the epoch × index × value plot)."""
    sim = access.get_visible(request.auth, simulation_id)
    ref = tensors.find(sim.id, params.key)
    if ref is None:
        raise NotFound(f"no recorded values for {params.key!r}")
    return tensors.sample(sim.id, ref, params.max_values, params.max_epochs)


@router.get("/simulations/{simulation_id}/compare", response=CompareOut)
def get_compare(
    request: HttpRequest, simulation_id: uuid.UUID, params: Query[CompareIn]
) -> dict[str, Any]:
    """This simulation (A) minus another of the caller's (B), per metric and epoch."""
    a = access.get_visible(request.auth, simulation_id)
    b = access.get_visible(request.auth, params.other)
    diff = compare.difference(metrics.read(a.id), metrics.read(b.id), _points(params.max_points))
    return {"other": b.id, "other_name": b.name, "metrics": diff}


@router.get("/tags", response=list[str])
def get_tags(request: HttpRequest) -> list[str]:
    """Every tag on the caller's simulations."""
    return listing.user_tags(request.auth)


@router.get("/tags/aggregates", response=TagAggregatesOut)
def get_tag_aggregates(request: HttpRequest, params: Query[TagAggregatesIn]) -> dict[str, Any]:
    """Mean, min, max and std per epoch over the caller's simulations with this tag."""
    ids = list(
        listing.search(request.auth, listing.Query(tag=params.tag)).values_list("id", flat=True)
    )
    if not ids:
        raise NotFound(f"none of your simulations has the tag {params.tag!r}")
    return {
        "tag": params.tag,
        "simulations": len(ids),
        "metrics": compare.tag_group(ids, _points(params.max_points)),
    }


def _async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The zip's pieces, each produced in the sync thread (the ORM), sent from the event loop."""
    pull = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)

    async def gen() -> AsyncIterator[bytes]:
        while (chunk := await pull()) is not None:
            if chunk:
                yield chunk

    return gen()


class ExportIn(Schema):
    """What the zip holds: the summary (statistics, small) or every recorded value too."""

    content: Literal["summary", "full"] = Field(
        "summary",
        description="summary: configuration, metrics, statistics, histograms (kB to MB); "
        "full: also every recorded kernel, bias and gradient as NPZ (see /export/estimate)",
    )
    dtype: Literal["float32", "float16"] = Field(
        "float32", description="the values' type in a full export (float16: half the size)"
    )


class ExportEstimateOut(Schema):
    """Sizes in bytes of each export before downloading it (from counts and shapes)."""

    summary_bytes: int
    full_bytes: dict[str, int] = Field(description='per dtype: {"float32": …, "float16": …}')
    epochs: int = Field(description="logged epochs")
    tensors: int = Field(description="variables with recorded values (kernels, biases, …)")
    model_bytes: int | None = Field(
        None, description="the trained model's Keras file (/model); null: none (yet)"
    )


def _stream(request: HttpRequest, chunks: Iterator[bytes], content_type: str, name: str) -> Any:
    # Under ASGI a sync iterator would be read whole into memory before sending; stream instead.
    body = _async_chunks(chunks) if hasattr(request, "scope") else chunks
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@router.get(
    "/simulations/{simulation_id}/export",
    openapi_extra={
        "responses": {200: {"description": "zip archive", "content": {"application/zip": {}}}}
    },
)
def get_export(
    request: HttpRequest, simulation_id: uuid.UUID, params: Query[ExportIn]
) -> StreamingHttpResponse:
    """A zip of the run: by default the summary; `content=full` adds every recorded value."""
    sim = access.get_visible(request.auth, simulation_id)
    full = params.content == "full"
    chunks = iter(export.Export(sim, full=full, dtype=params.dtype))
    return _stream(
        request, chunks, "application/zip", export.filename(sim, full=full, dtype=params.dtype)
    )


@router.get("/simulations/{simulation_id}/export/estimate", response=ExportEstimateOut)
def get_export_estimate(request: HttpRequest, simulation_id: uuid.UUID) -> dict[str, Any]:
    """How large the summary and full exports are, without building them."""
    sim = access.get_visible(request.auth, simulation_id)
    try:
        model = trained.find(sim).size
    except NotFound:
        model = None
    return export.estimate(sim) | {"model_bytes": model}


@router.get(
    "/simulations/{simulation_id}/model",
    openapi_extra={
        "responses": {
            200: {"description": "Keras file", "content": {"application/octet-stream": {}}}
        }
    },
)
def get_model(request: HttpRequest, simulation_id: uuid.UUID) -> StreamingHttpResponse:
    """The trained model of a finished run as a `.keras` file (`keras.saving.load_model`)."""
    sim = access.get_visible(request.auth, simulation_id)
    found = trained.find(sim)
    name = export.filename(sim, ext=".keras")
    response = _stream(request, found.chunks, "application/octet-stream", name)
    response["Content-Length"] = str(found.size)
    return response
