"""`EarlyStopper`: ends a run once a fatal diagnosis has held for `patience` logged epochs.

Opt-in per experiment (`early_stop` in the configuration, schemas.experiment.EarlyStopSpec).
It reads the diagnoses the TrackerCallback computed for the epoch it just published, so it
must come after the tracker in the callback list. A stop happens at an epoch boundary: the
epoch is complete, published and checkpointed, and a resume continues from it.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import keras

from schemas.diagnosis import Diagnosis
from schemas.experiment import EarlyStopSpec
from schemas.status import EarlyStop

log = logging.getLogger(__name__)


class Diagnosed(Protocol):
    """What the stopper reads of the tracker: the last logged epoch and its active diagnoses."""

    logged: int
    total_epochs: int


class EarlyStopper(keras.callbacks.Callback):
    """Counts, per problem in `spec.on`, the logged epochs in a row it was active; stops at
    `patience` and keeps the diagnosis that stopped the run in `reason`."""

    def __init__(self, tracker: Diagnosed, spec: EarlyStopSpec) -> None:
        super().__init__()
        self.tracker, self.spec = tracker, spec
        self.streaks: dict[str, int] = {}
        self.seen = 0  # the last logged epoch counted: each counts once
        self.reason: Diagnosis | None = None
        self.epoch = 0  # the epoch after which it stopped

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """After a logged epoch, count its diagnoses; stop training when one held long enough."""
        logged = self.tracker.logged
        if not self.spec.enabled or logged != epoch + 1 or logged <= self.seen:
            return  # not a logged epoch (epoch_period > 1), or an interrupted one
        if self.observe(logged, getattr(self.tracker, "diagnoses", None) or []) is not None:
            self.model.stop_training = True

    def observe(self, epoch: int, diagnoses: list[Diagnosis]) -> Diagnosis | None:
        """Count one logged epoch's active diagnoses; the one that stops the run, if any.

        A logged epoch without a problem resets that problem's count: only a stable
        diagnosis stops a run, never one that came and went.
        """
        self.seen = epoch
        active = {d.problem: d for d in diagnoses if d.problem in self.spec.on}
        self.streaks = {p: self.streaks.get(p, 0) + 1 for p in active}
        due = [p for p in self.spec.on if self.streaks.get(p, 0) >= self.spec.patience]
        if due and self.reason is None:
            # The longest-held problem explains the run best; ties go to the order of `on`.
            problem = max(due, key=lambda p: (self.streaks[p], -self.spec.on.index(p)))
            self.reason, self.epoch = active[problem], epoch
            log.info(
                "simulation %s: early stop after epoch %d: %s held for %d logged epochs",
                getattr(self.tracker, "simulation_id", "?"),
                epoch,
                problem,
                self.streaks[problem],
            )
        return self.reason

    def note(self, total_epochs: int) -> EarlyStop | None:
        """The structured reason for the run's `stopped` event; None when it never fired."""
        if self.reason is None:
            return None
        return EarlyStop(
            problem=self.reason.problem,
            title=self.reason.title[:200],
            summary=self.reason.summary,
            epoch=self.epoch,
            total_epochs=total_epochs,
            saved_epochs=max(0, total_epochs - self.epoch),
        )


def message(note: EarlyStop) -> str:
    """The one-line status message of an early-stopped run."""
    reason = f"{note.title} — {note.summary}" if note.summary else note.title
    return (
        f"stopped early after epoch {note.epoch} of {note.total_epochs}: {reason}; "
        f"saved {note.saved_epochs} epoch{'s' if note.saved_epochs != 1 else ''}"
    )
