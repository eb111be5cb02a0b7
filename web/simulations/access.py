"""Who may see which simulation: owners see theirs, staff see all."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q, QuerySet

from web.errors import NotFound
from web.simulations.models import Simulation


def visible(user: Any) -> QuerySet[Simulation]:
    """Simulations the user may see (runs created outside the web match by owner name)."""
    if not getattr(user, "is_authenticated", False):
        return Simulation.objects.none()
    if user.is_staff:
        return Simulation.objects.all()
    by_name = Q(owner__isnull=True, owner_name=user.get_username())
    return Simulation.objects.filter(Q(owner=user) | by_name)


def get_visible(user: Any, simulation_id: uuid.UUID) -> Simulation:
    """One simulation the user may see, or NotFound (never reveal others' runs)."""
    sim = visible(user).filter(pk=simulation_id).first()
    if sim is None:
        raise NotFound(f"no simulation {simulation_id}")
    return sim
