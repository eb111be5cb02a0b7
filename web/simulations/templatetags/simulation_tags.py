"""Template filters of the simulation pages."""

from __future__ import annotations

import math
from typing import Any

from django import template

register = template.Library()


@register.filter
def get(mapping: Any, key: str) -> Any:
    """`mapping[key]`, or None."""
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def num(value: Any) -> str:
    """A metric value for a table: 4 significant digits, an en dash when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


@register.filter
def metric_label(name: str) -> str:
    """`val_accuracy` → `Validation accuracy`, `learning_rate` → `Learning rate`."""
    text = name.removeprefix("val_").replace("_", " ")
    text = ("validation " + text) if name.startswith("val_") else text
    return text[:1].upper() + text[1:]
