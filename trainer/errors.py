"""The trainer's exceptions: one base, each message names the field and the fix."""

from __future__ import annotations


class TrainerError(Exception):
    """Base of every error the trainer raises on purpose."""


class SpecError(TrainerError):
    """The run specification (run.json) is missing or invalid."""


class DatasetError(TrainerError):
    """A dataset file cannot be used for this run."""


class ModelError(TrainerError):
    """The model JSON is refused or cannot be built."""


class CompileError(TrainerError):
    """An optimizer, loss or metric of the configuration is unknown or misconfigured."""


class ConfigError(TrainerError):
    """A configuration field does not fit the model it is used with."""
