"""Experiment and Simulation tables.

Contract: the Faust status projection upserts these tables with raw SQL, so every column has
a database default or is nullable, and the table names are fixed.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.functions import RandomUUID
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Now

STATUSES = ("queued", "starting", "running", "paused", "stopped", "finished", "failed", "deleted")
TERMINAL = ("stopped", "finished", "failed", "deleted")


class Experiment(models.Model):
    """One upload: a configuration and a model that expand into simulations."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="experiments",
    )
    name = models.CharField(max_length=200, db_default="")
    config = models.JSONField(db_default={})
    model_json = models.JSONField(db_default={})
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "nnt_experiment"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or str(self.id)


class Simulation(models.Model):
    """One training run of an experiment's grid."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="simulations"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="simulations",
    )
    owner_name = models.CharField(max_length=150, db_default="", blank=True)
    name = models.CharField(max_length=300, db_default="")
    status = models.CharField(max_length=20, db_default="queued")
    epoch = models.IntegerField(db_default=0)
    total_epochs = models.IntegerField(db_default=0)
    message = models.TextField(db_default="", blank=True)
    error = models.TextField(db_default="", blank=True)
    config = models.JSONField(db_default={})
    tags = ArrayField(models.CharField(max_length=64), db_default=[], blank=True)
    index = models.IntegerField(db_default=0)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())
    status_at = models.DateTimeField(db_default=Now())
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set by the status projection when the experiment's early-stop rule ended the run
    # (schemas.status.EarlyStop); null otherwise. Rows projected before `test_metrics`
    # existed also keep the stopped run's test metrics here.
    early_stop = models.JSONField(null=True, blank=True)
    # Final test-set metrics ({name: value}), set by the status projection from the `metrics`
    # of a `finished` or early-stopped `stopped` event ({} when the run had no test set);
    # null while the run goes on, and on rows projected before this column existed.
    test_metrics = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "nnt_simulation"
        ordering = ["-created_at", "index"]
        indexes = [
            GinIndex(fields=["tags"], name="nnt_simulation_tags_gin"),
            models.Index(fields=["owner", "status"], name="nnt_simulation_owner_status"),
        ]

    def __str__(self) -> str:
        return self.name or str(self.id)

    @property
    def progress(self) -> float:
        """Fraction of epochs done, 0..1."""
        if not self.total_epochs:
            return 0.0
        return max(0.0, min(1.0, self.epoch / self.total_epochs))

    @property
    def percent(self) -> int:
        """Progress in whole percent, for templates."""
        return round(self.progress * 100)

    @property
    def is_terminal(self) -> bool:
        """Whether the run has ended."""
        return self.status in TERMINAL

    @property
    def headline(self) -> str:
        """The status message as one line: a failed run's reason (older rows kept whole
        tracebacks in `message`; their first line stands in)."""
        return headline(self.message or (self.error if self.status == "failed" else ""))

    @property
    def error_details(self) -> str:
        """The full error behind a failure's headline; "" when it says no more than that."""
        full = self.error.strip()
        return full if full and full != self.headline else ""


HEADLINE_CAP = 300


def headline(text: str) -> str:
    """The first non-empty line of a text, at most HEADLINE_CAP characters."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= HEADLINE_CAP else line[: HEADLINE_CAP - 1] + "…"
