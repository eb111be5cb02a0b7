"""A model summary from the stored Keras JSON, without TensorFlow; final test metrics of a run.

Layers and output shapes come from walking the Keras config (Keras 3 and tf.keras 2.x);
parameter counts come from the shapes of the tensors the run recorded, falling back to what
the config implies for Dense and convolution layers when nothing was recorded yet.
"""

from __future__ import annotations

import math
import re
from typing import Any

Shape = list[int | None] | None

SAME_SHAPE = {
    "Dropout",
    "Activation",
    "BatchNormalization",
    "LayerNormalization",
    "GaussianNoise",
    "GaussianDropout",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "Softmax",
    "Rescaling",
    "Normalization",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "AlphaDropout",
    "UnitNormalization",
}
TEST_METRIC = re.compile(r"([A-Za-z_][\w.]*)=(-?[\d.]+(?:e[-+]?\d+)?|nan|inf)")


def _layers(model: dict[str, Any]) -> list[dict[str, Any]]:
    config = model.get("config") or {}
    if isinstance(config, dict) and isinstance(config.get("layers"), list):
        return [layer for layer in config["layers"] if isinstance(layer, dict)]
    return []


def _input_shape(cfg: dict[str, Any]) -> Shape:
    for key in ("batch_shape", "batch_input_shape"):
        if isinstance(cfg.get(key), list):
            return list(cfg[key])
    if isinstance(cfg.get("input_shape"), list):
        return [None, *cfg["input_shape"]]
    return None


def _conv(shape: list[int | None], cfg: dict[str, Any], dims: int, channels: int | None) -> Shape:
    def pair(value: Any) -> list[int]:
        return list(value) if isinstance(value, list) else [int(value or 1)] * dims

    kernel, strides = pair(cfg.get("kernel_size") or cfg.get("pool_size")), pair(cfg.get("strides"))
    same = cfg.get("padding") == "same"
    out: list[int | None] = [shape[0]]
    for size, k, s in zip(shape[1 : 1 + dims], kernel, strides, strict=False):
        if size is None:
            out.append(None)
        else:
            out.append(math.ceil(size / s) if same else (size - k) // s + 1)
    return [*out, channels if channels is not None else shape[-1]]


def output_shape(kind: str, cfg: dict[str, Any], shape: Shape) -> Shape:
    """Output shape of one layer given its input shape; None when it cannot be told."""
    if kind == "InputLayer":
        return _input_shape(cfg)
    if shape is None:
        shape = _input_shape(cfg)  # first layer with input_shape in its config (tf.keras 2.x)
        if shape is None:
            return None
    if kind in SAME_SHAPE:
        return shape
    if kind == "Dense":
        return [*shape[:-1], cfg.get("units")]
    if kind == "Flatten":
        rest = shape[1:]
        return [shape[0], None if None in rest else math.prod(rest)]  # type: ignore[arg-type]
    if kind == "Reshape" and isinstance(cfg.get("target_shape"), list):
        return [shape[0], *cfg["target_shape"]]
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        return _conv(shape, cfg, int(kind[-2]), cfg.get("filters"))
    if kind in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D"):
        cfg = {**cfg, "strides": cfg.get("strides") or cfg.get("pool_size")}
        return _conv(shape, cfg, int(kind[-2]), None)
    if kind.startswith("Global") and "Pooling" in kind:
        return [shape[0], shape[-1]]
    if kind == "Embedding":
        return [*shape, cfg.get("output_dim")]
    if kind in ("LSTM", "GRU", "SimpleRNN"):
        units = cfg.get("units")
        return [shape[0], shape[1], units] if cfg.get("return_sequences") else [shape[0], units]
    return None


def _implied_params(kind: str, cfg: dict[str, Any], shape: Shape) -> int | None:
    if shape is None or shape[-1] is None:
        return None
    fan_in, bias = int(shape[-1]), bool(cfg.get("use_bias", True))
    if kind == "Dense" and cfg.get("units"):
        return fan_in * int(cfg["units"]) + (int(cfg["units"]) if bias else 0)
    if kind in ("Conv1D", "Conv2D") and cfg.get("filters"):
        k = cfg.get("kernel_size") or 1
        area = math.prod(k) if isinstance(k, list) else int(k) ** int(kind[-2])
        return area * fan_in * int(cfg["filters"]) + (int(cfg["filters"]) if bias else 0)
    return None


def _fmt(shape: Shape) -> str:
    if shape is None:
        return "—"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def model_summary(model: dict[str, Any], recorded: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`{"name", "class_name", "layers": [{name, type, output_shape, params, variables}], "total"}`."""
    rows: list[dict[str, Any]] = []
    shape: Shape = None
    for layer in _layers(model):
        kind = str(layer.get("class_name") or "?")
        cfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        name = str(cfg.get("name") or layer.get("name") or kind.lower())
        if shape is None and kind != "InputLayer":
            shape = _input_shape(cfg)
        implied = _implied_params(kind, cfg, shape)
        shape = output_shape(kind, cfg, shape)
        seen = recorded.get(name)
        params = seen["params"] if seen else implied
        rows.append(
            {
                "name": name,
                "type": kind,
                "output_shape": _fmt(shape),
                "params": params,
                "activation": cfg.get("activation")
                if isinstance(cfg.get("activation"), str)
                else "",
                "variables": seen["variables"] if seen else {},
            }
        )
    known = [r["params"] for r in rows if r["params"] is not None]
    config = model.get("config") if isinstance(model.get("config"), dict) else {}
    return {
        "name": str(config.get("name") or ""),
        "class_name": str(model.get("class_name") or ""),
        "layers": rows,
        "total": sum(known) if known else None,
        "counted": len(known) == len(rows),
    }


def run_test_metrics(sim: Any) -> dict[str, float]:
    """final_test_metrics of a Simulation row."""
    stored, note = getattr(sim, "test_metrics", None), getattr(sim, "early_stop", None)
    return final_test_metrics(sim.status, stored, sim.message, note)


def final_test_metrics(
    status: str, stored: Any, message: str, early_stop: Any = None
) -> dict[str, float]:
    """A run's final test metrics: the stored `test_metrics` the status projection wrote.

    Rows projected before that column (null there) keep them where they were: an
    early-stopped run in its `early_stop` note, a finished run only in its message.
    """
    if isinstance(stored, dict):
        return _numbers(stored)
    if status == "stopped" and isinstance(early_stop, dict):
        return _numbers(early_stop.get("test_metrics"))
    return test_metrics(status, message)


def _numbers(values: Any) -> dict[str, float]:
    if not isinstance(values, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def test_metrics(status: str, message: str) -> dict[str, float]:
    """Final test metrics from a finished run's message (`test: accuracy=0.91, loss=0.3`): only
    for rows finished before the status projection stored them (final_test_metrics)."""
    if status != "finished" or not message.startswith("test:"):
        return {}
    out: dict[str, float] = {}
    for name, value in TEST_METRIC.findall(message):
        try:
            out[name] = float(value)
        except ValueError:
            continue
    return out
