"""Project-level pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    """What the product does, and where to go next."""
    return render(request, "home.html")
