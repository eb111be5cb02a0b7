"""Static files served by the app itself (daphne, DEBUG off, offline): app assets and Plotly.js."""

from __future__ import annotations

import functools
import gzip
import hashlib
import mimetypes
from importlib import metadata, resources
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.http import require_safe

LONG_CACHE = "public, max-age=31536000, immutable"
SHORT_CACHE = "public, max-age=300"


@functools.lru_cache(maxsize=256)
def _load(path: str) -> tuple[bytes, bytes, str, str]:
    """Raw bytes, gzip bytes, content type and ETag of a file, read once per process."""
    raw = Path(path).read_bytes()
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
        kind += "; charset=utf-8"
    etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
    return raw, gzip.compress(raw, compresslevel=6), kind, etag


def _respond(request: HttpRequest, path: str, cache: str) -> HttpResponse:
    raw, packed, kind, etag = _load(path)
    if request.headers.get("If-None-Match") == etag:
        return HttpResponseNotModified()
    use_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
    response = HttpResponse(packed if use_gzip else raw, content_type=kind)
    if use_gzip:
        response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept-Encoding"
    response["Cache-Control"] = cache
    response["ETag"] = etag
    return response


@functools.cache
def versions() -> dict[str, str]:
    """Plotly's and our version, the cache-busting query of pages' script and style URLs
    (read once per process: package metadata is files on disk)."""
    try:
        ours = metadata.version("nntracker")
    except metadata.PackageNotFoundError:  # run from a source tree without `pip install -e .`
        ours = "dev"
    return {"plotly_version": metadata.version("plotly"), "asset_version": ours}


def plotly_path() -> str:
    """Path of plotly.min.js inside the installed `plotly` package."""
    return str(resources.files("plotly") / "package_data" / "plotly.min.js")


@require_safe
def plotly_js(request: HttpRequest) -> HttpResponse:
    """Plotly.js from the installed package; the version is in the URL, so cache for long."""
    return _respond(request, plotly_path(), LONG_CACHE)


@require_safe
def static_file(request: HttpRequest, path: str) -> HttpResponse:
    """An app static file found by the staticfiles finders."""
    if ".." in Path(path).parts:
        raise Http404("bad path")
    found = finders.find(path)
    if not found:
        raise Http404("no such file")
    return _respond(request, str(found), SHORT_CACHE)
