"""The create form's POST as an appendix-A dict, and validation errors mapped to form fields.

Pure (no Django): the view feeds it a QueryDict, tests feed it a plain dict of lists.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.experiment import CollectSpec, ExperimentConfig

INT_FIELDS = ("batch_size", "total_epochs", "epoch_period", "k_fold_validation")
TEXT_FIELDS = (
    "name",
    "k_fold_tag",
    "train_feature_name",
    "train_label_name",
    "test_feature_name",
    "test_label_name",
    "val_feature_name",
    "val_label_name",
    "label_column",
)
DATASETS = ("train", "test", "val")
COLLECT_FLAGS = ("weights", "biases", "gradients", "activations")
# Repeated rows: form field of the name, of the options, appendix-A list and item key.
ROWS = {
    "optimizers": ("optimizer", "optimizer_conf", "optimizer"),
    "loss_functions": ("loss_function", "loss_conf", "loss_function"),
    "extra_metrics": ("metric", "metric_conf", "metric"),
}
ALIASES = {
    "loss_function": "loss_functions",
    "k-fold_validation": "k_fold_validation",
    "k-fold_tag": "k_fold_tag",
    "extra-metrics": "extra_metrics",
}
KNOWN = (
    *INT_FIELDS,
    *TEXT_FIELDS,
    "learning_rates",
    "tags",
    "validation_split",
    "dataset_train",
    "dataset_test",
    "dataset_val",
    *ROWS,
)
FRIENDLY = {
    "dataset_train": {"missing": "Upload a training dataset or give its URL."},
    "model": {"missing": "Upload the Keras model JSON file."},
}


class FormData(Protocol):
    """What the parser needs of a POST (Django's QueryDict fits)."""

    def get(self, key: str, default: Any = None) -> Any:
        """The last value of a key."""

    def getlist(self, key: str) -> list[Any]:
        """Every value of a key."""


@dataclass
class Parsed:
    """The form as an appendix-A dict, its rows for re-rendering, and parse errors."""

    raw: dict[str, Any]
    rows: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    rates: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _text(data: FormData, key: str) -> str:
    return str(data.get(key) or "").strip()


def _split(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\n]", text) if part.strip()]


def _conf(text: str, path: str, errors: dict[str, str]) -> dict[str, Any]:
    """A row's options JSON: blank is {}; anything but a JSON object is an error."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        detail = getattr(exc, "msg", "nested too deeply")
        errors[path] = f'Options must be JSON, e.g. {{"beta_1": 0.9}} ({detail})'
        return {}
    if not isinstance(value, dict):
        errors[path] = 'Options must be a JSON object, e.g. {"beta_1": 0.9}'
        return {}
    return value


def _rows(data: FormData, parsed: Parsed) -> None:
    for key, (name_field, conf_field, item_key) in ROWS.items():
        names, confs = data.getlist(name_field), data.getlist(conf_field)
        confs = confs + [""] * (len(names) - len(confs))
        rows = [
            (str(n).strip(), str(c))
            for n, c in zip(names, confs, strict=False)
            if str(n).strip() or str(c).strip()
        ]
        parsed.rows[key] = rows
        parsed.raw[key] = [
            {item_key: name, "conf": _conf(conf, f"{key}.{i}.conf", parsed.errors)}
            for i, (name, conf) in enumerate(rows)
        ]


def _collect(data: FormData) -> dict[str, Any]:
    out: dict[str, Any] = {
        flag: data.get(f"collect_{flag}") in ("on", "true", "1") for flag in COLLECT_FLAGS
    }
    layers = _split(_text(data, "collect_layers"))
    out["layers"] = layers or None
    for key in ("full_tensor_period", "probe_size", "dtype"):
        value = _text(data, f"collect_{key}")
        if value:
            out[key] = value
    return out


def _early_stop(data: FormData) -> dict[str, Any]:
    """The "Stop runs early on a fatal diagnosis" checkbox and its patience (when on)."""
    if data.get("early_stop") not in ("on", "true", "1"):
        return {"enabled": False}
    patience = _text(data, "early_stop_patience")
    return {"enabled": True, **({"patience": patience} if patience else {})}


def from_form(data: FormData) -> Parsed:
    """Build the appendix-A dict from the form fields (blank optional fields are left out)."""
    parsed = Parsed(raw={})
    raw = parsed.raw
    for key in (*INT_FIELDS, *TEXT_FIELDS, "validation_split"):
        value = _text(data, key)
        if value:
            raw[key] = value
    for ds in DATASETS:
        url = _text(data, f"dataset_{ds}_url")
        if url:
            raw[f"dataset_{ds}"] = url
    parsed.rates = [str(r).strip() for r in data.getlist("learning_rate") if str(r).strip()]
    raw["learning_rates"] = list(parsed.rates)
    raw["tags"] = _split(_text(data, "tags"))
    _rows(data, parsed)
    raw["collect"] = _collect(data)
    raw["early_stop"] = _early_stop(data)
    return parsed


def defaults() -> dict[str, Any]:
    """The schema's defaults, to fill a fresh form."""
    config = ExperimentConfig(dataset_train="placeholder")
    return config.model_dump(mode="json") | {"collect": CollectSpec().model_dump(mode="json")}


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def form_errors(errors: dict[str, str], json_mode: bool = False) -> dict[str, str]:
    """Validation paths ("optimizers.0.conf.x", "collect.dtype", "__all__") → form field keys.

    Row errors keep their index ("optimizers.0"); the `collect.` prefix becomes `collect_`.
    In JSON mode every configuration error also lands under `config`, path included.
    """
    out: dict[str, str] = {}
    listed: list[str] = []
    for path, message in errors.items():
        msg = _clean(message)
        head, *rest = path.split(".")
        head = ALIASES.get(head, head)
        if head in ("model", "config") or head.startswith("dataset_"):
            key = head
        elif head == "collect" and rest:
            key = f"collect_{rest[0]}"
        elif head == "early_stop":
            key = "early_stop_patience" if rest[:1] == ["patience"] else "early_stop"
        elif head in ROWS and rest and rest[0].isdigit():
            key = f"{head}.{rest[0]}"
        elif head == "learning_rates" and rest and rest[0].isdigit():
            key = f"learning_rates.{rest[0]}"
        elif head == "__all__":
            named = [k for k in KNOWN if k in msg]
            key = min(named, key=msg.index) if named else "__all__"
        else:
            key = head
        if msg == "Field required" and key in FRIENDLY:
            msg = FRIENDLY[key]["missing"]
        if "_" not in msg.split(" ", 1)[0]:  # keep field names as written
            msg = msg[:1].upper() + msg[1:]
        out.setdefault(key, msg)
        if json_mode and key not in ("model", "config") and not key.startswith("dataset_"):
            listed.append(f"{path}: {msg}" if path != "__all__" else msg)
    if listed:
        out["config"] = "; ".join(listed)
    return out
