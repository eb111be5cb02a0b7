"""Who may see which simulation: owners see theirs, staff see all."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q, QuerySet

from web.errors import NotFound
from web.simulations.models import Simulation


def owned_by(user: Any) -> Q:
    """The user's runs, by account id only: a name with no account owns nothing, and
    registering (or renaming to) a name inherits nothing."""
    return Q(owner=user)


def visible(user: Any) -> QuerySet[Simulation]:
    """Simulations the user may see: their own; staff see all."""
    if not getattr(user, "is_authenticated", False):
        return Simulation.objects.none()
    if user.is_staff:
        return Simulation.objects.all()
    return Simulation.objects.filter(owned_by(user))


def get_visible(user: Any, simulation_id: uuid.UUID) -> Simulation:
    """One simulation the user may see, or NotFound (never reveal others' runs)."""
    sim = visible(user).filter(pk=simulation_id).first()
    if sim is None:
        raise NotFound(f"no simulation {simulation_id}")
    return sim
