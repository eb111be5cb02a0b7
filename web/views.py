"""Project-level pages and the context every template gets."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from schemas import lifecycle


def home(request: HttpRequest) -> HttpResponse:
    """What the product does, how data flows, and how to start."""
    return render(request, "home.html")


@cache
def _version() -> str:
    try:
        return version("nntracker")
    except PackageNotFoundError:
        return "dev"


def site(request: HttpRequest) -> dict[str, Any]:
    """Template context of every page: the product version for the footer, and which action
    each run status allows (schemas/lifecycle.py) for the pages' JavaScript."""
    return {"nnt_version": _version(), "nnt_lifecycle": lifecycle.as_json()}
