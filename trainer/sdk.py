"""The tracker callback for users' own Keras scripts.

from trainer.sdk import TrackerCallback, CollectSpec
model.fit(x, y, epochs=20, callbacks=[TrackerCallback(simulation_name="my run")])
"""

from __future__ import annotations

try:
    import keras  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the user's environment
    raise ImportError(
        "TrackerCallback needs Keras 3 and TensorFlow: pip install 'nntracker[trainer]'"
    ) from exc

from schemas.experiment import CollectSpec
from trainer.callback import TrackerCallback

__all__ = ["CollectSpec", "TrackerCallback"]
