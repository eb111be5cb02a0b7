"""What the admin console reads and changes about users (pages and API share it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery

from schemas.commands import LifecycleCommand
from store import resources
from web.accounts import keys
from web.errors import Forbidden, NotFound
from web.simulations import access, commands
from web.simulations.models import TERMINAL, Simulation

log = logging.getLogger(__name__)
ACTIVE = ("queued", "starting", "running", "paused")
SORTS = {
    "username": "username",
    "-username": "-username",
    "joined": "date_joined",
    "-joined": "-date_joined",
    "login": "last_login",
    "-login": "-last_login",
    "simulations": "n_simulations",
    "-simulations": "-n_simulations",
    "running": "n_running",
    "-running": "-n_running",
}
FLAGS = {"yes": True, "no": False}


@dataclass(frozen=True)
class Usage:
    """Summed latest resource samples of a user's running simulations."""

    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int | None
    gpu_percent: float | None
    gpu_memory_bytes: int | None
    sampled_runs: int
    oldest_sample: datetime | None

    @property
    def memory_percent(self) -> float | None:
        """RAM in use as a percentage of the summed limits, when the runtime reports limits."""
        if not self.memory_limit_bytes:
            return None
        return 100.0 * self.memory_bytes / self.memory_limit_bytes


def simulations_of(user: Any) -> QuerySet[Simulation]:
    """Every row of the user's runs (any status), by account id."""
    return Simulation.objects.filter(access.owned_by(user))


def _count_of_user(condition: Q) -> Subquery:
    """Correlated count of the outer user's runs (by account id) meeting a condition."""
    mine = Q(owner=OuterRef("pk"))
    rows = (
        Simulation.objects.filter(mine & condition)
        .order_by()
        .annotate(n=Func(F("id"), function="COUNT"))
        .values("n")
    )
    return Subquery(rows, output_field=IntegerField())


def users(search: str = "", staff: str = "", active: str = "", sort: str = "username") -> QuerySet:
    """Users with their simulation counts, searched, filtered and sorted."""
    qs = get_user_model().objects.annotate(
        n_simulations=_count_of_user(~Q(status="deleted")),
        n_running=_count_of_user(Q(status="running")),
    )
    if search.strip():
        term = search.strip()
        qs = qs.filter(Q(username__icontains=term) | Q(email__icontains=term))
    if staff in FLAGS:
        qs = qs.filter(is_staff=FLAGS[staff])
    if active in FLAGS:
        qs = qs.filter(is_active=FLAGS[active])
    return qs.order_by(SORTS.get(sort, "username"), "pk")


def get_user(user_id: int) -> Any:
    """One user, or NotFound."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def counts(user: Any) -> dict[str, int]:
    """Simulations of a user by status: total (not deleted), running, finished, failed, and more."""
    rows = (
        simulations_of(user).exclude(status="deleted").values_list("status").annotate(n=Count("pk"))
    )
    by_status = dict(rows)
    out = {"total": sum(by_status.values())}
    for status in ("running", "finished", "failed", "queued", "starting", "paused", "stopped"):
        out[status] = by_status.get(status, 0)
    out["active"] = sum(by_status.get(s, 0) for s in ACTIVE)
    return out


def usage(user: Any) -> Usage:
    """Latest nnt_resource row of each running simulation of the user, summed."""
    ids = list(simulations_of(user).filter(status="running").values_list("id", flat=True))
    if not ids:
        return Usage(0.0, 0, None, None, None, 0, None)
    with connection.cursor() as cur:
        cpu, memory, limit, gpu, gpu_memory, n, oldest = resources.latest_sum(cur, ids)
    return Usage(
        float(cpu or 0.0),
        int(memory or 0),
        None if limit is None else int(limit),
        None if gpu is None else float(gpu),
        None if gpu_memory is None else int(gpu_memory),
        int(n),
        oldest,
    )


def _not_self(actor: Any, target: Any, what: str) -> None:
    if actor.pk == target.pk:
        raise Forbidden(f"you cannot {what} your own account; ask another admin")


def set_staff(actor: Any, target: Any, staff: bool) -> None:
    """Grant or revoke admin rights (never one's own: an admin cannot lock themselves out)."""
    _not_self(actor, target, "change the admin rights of")
    target.is_staff = staff
    if not staff:
        target.is_superuser = False
    target.save(update_fields=["is_staff", "is_superuser"])
    log.info("%s set staff=%s on user %s", actor.get_username(), staff, target.pk)


def set_active(actor: Any, target: Any, active: bool) -> None:
    """Enable or disable login (tokens of a disabled user stop working too)."""
    _not_self(actor, target, "disable")
    target.is_active = active
    target.save(update_fields=["is_active"])
    log.info("%s set active=%s on user %s", actor.get_username(), active, target.pk)


def delete(actor: Any, target: Any) -> int:
    """Send `delete` for the user's unfinished runs, then remove the user and their rows.

    Runs matched by owner name go too: a later account of the same name must not inherit them.
    Returns how many runs were told to stop. If Kafka does not acknowledge, nothing is deleted.
    """
    _not_self(actor, target, "delete")
    live = list(simulations_of(target).exclude(status__in=TERMINAL))
    with transaction.atomic():
        for sim in live:
            commands.publish(
                keys.sign(LifecycleCommand(type="delete", simulation_id=sim.id), actor)
            )
        simulations_of(target).delete()
        target.delete()
    log.info(
        "%s deleted user %s (%d runs told to delete)", actor.get_username(), target.pk, len(live)
    )
    return len(live)
