"""Shared helpers of the trainer unit tests: tiny models, tiny data, in-memory publisher."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections.abc import Callable  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.unit.trainer.tiny import tiny_data, tiny_model  # noqa: E402


@pytest.fixture
def model_factory() -> Callable[..., keras.Model]:
    """Build a fresh compiled tiny model."""
    return tiny_model


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    """A tiny classification dataset."""
    return tiny_data()
