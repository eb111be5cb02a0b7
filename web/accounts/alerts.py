"""Diagnosis alerts: each user's choice (off | fatal | all) and which diagnoses it lets through."""

from __future__ import annotations

from typing import Any

from web.accounts.models import ALERT_CHOICES, AlertPreference

LEVELS: tuple[str, ...] = tuple(value for value, _ in ALERT_CHOICES)
DEFAULT = "off"


def preference(user: Any) -> str:
    """The user's alert level; `off` for anyone who never chose one."""
    if not getattr(user, "is_authenticated", False):
        return DEFAULT
    row = AlertPreference.objects.filter(user=user).only("diagnoses").first()
    return row.diagnoses if row else DEFAULT


def set_preference(user: Any, level: str) -> str:
    """Store the user's alert level (one of LEVELS) and return it."""
    if level not in LEVELS:
        raise ValueError(f"alert level must be one of {', '.join(LEVELS)}, not {level!r}")
    AlertPreference.objects.update_or_create(user=user, defaults={"diagnoses": level})
    return level


def wanted(level: str, severity: str) -> bool:
    """Whether a diagnosis of this severity is announced at this level."""
    return level == "all" or (level == "fatal" and severity == "fatal")
