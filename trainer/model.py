"""Build a Keras model from user JSON (Keras 3 or tf.keras 2.x), safely."""

from __future__ import annotations

import logging
from typing import Any

import keras

from trainer.errors import ModelError
from trainer.modeljson import check_model_json, convert_legacy, is_legacy

log = logging.getLogger(__name__)


def load_model(config: dict[str, Any], max_params: int) -> keras.Model:
    """Check the JSON against the allowlist, convert legacy JSON, deserialise in safe mode."""
    check_model_json(config)
    if is_legacy(config):
        config = convert_legacy(config)
        check_model_json(config)
    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as exc:  # Keras raises many types for one bad config
        raise ModelError(f"model: cannot build the model from its JSON: {exc}") from exc
    if not isinstance(model, keras.Model):
        raise ModelError("model: the JSON does not describe a Keras model")
    if not model.built:
        raise ModelError(
            "model: the input shape is unknown; start the model with an Input "
            "layer (keras.Input(shape=...)) before exporting it"
        )
    params = model.count_params()
    if params > max_params:
        raise ModelError(
            f"model: {params} parameters exceed the limit of {max_params}; "
            "use a smaller model or ask the operator to raise NNT_TRAINER_MAX_PARAMS"
        )
    return model
