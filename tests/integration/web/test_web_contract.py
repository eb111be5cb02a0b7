"""The tables other components write with raw SQL: fixed names, defaults on every column."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.db import connection


def test_it_fills_every_simulation_column_from_defaults(django_ready: Path) -> None:
    sim = uuid.uuid4()
    with connection.cursor() as cur:
        cur.execute("INSERT INTO nnt_simulation (id) VALUES (%s)", [sim])
        cur.execute(
            "SELECT status, epoch, total_epochs, tags, config, owner_name, created_at "
            "FROM nnt_simulation WHERE id = %s",
            [sim],
        )
        status, epoch, total, tags, config, owner, created = cur.fetchone()
    assert (status, epoch, total, tags, owner) == ("queued", 0, 0, [], "")
    assert config in ({}, "{}") and created is not None


def test_it_upserts_like_the_status_projection(django_ready: Path) -> None:
    from web.simulations.models import Simulation

    sim = uuid.uuid4()
    sql = (
        "INSERT INTO nnt_simulation (id, status, epoch, total_epochs, tags) "
        "VALUES (%s, %s, %s, 10, %s) ON CONFLICT (id) DO UPDATE "
        "SET status = EXCLUDED.status, epoch = EXCLUDED.epoch, updated_at = now()"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [sim, "running", 3, ["a"]])
        cur.execute(sql, [sim, "running", 4, ["a"]])
    row = Simulation.objects.get(pk=sim)
    assert (row.status, row.epoch, row.progress, row.tags) == ("running", 4, 0.4, ["a"])


def test_it_creates_an_experiment_row_with_nothing_given(django_ready: Path) -> None:
    with connection.cursor() as cur:
        cur.execute("INSERT INTO nnt_experiment DEFAULT VALUES RETURNING id, name, config")
        ident, name, config = cur.fetchone()
    assert isinstance(ident, uuid.UUID) and name == "" and config in ({}, "{}")
