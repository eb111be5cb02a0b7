"""Pre-flight: the model, the data and every grid choice tried on one real batch, no training.

The orchestrator runs this (`python -m trainer RUN_DIR` with a run.json whose `mode` is
`check`) before a single run of an experiment is queued. Every optimizer (at every learning
rate), every loss and every extra metric is built with its typed options and meets a real
batch of the training data; a problem comes back as {field path: what is wrong and the fix}
so that the web, the API and the CLI answer 422 next to the field instead of N failed runs.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from schemas.run import CHECK_FILE, RUN_SPEC_FILE, RunSpec
from trainer import compiling, failure, shaping
from trainer.datasets import Split
from trainer.errors import SpecError, TrainerError
from trainer.model import load_model
from trainer.preparation import load_data
from trainer.settings import TrainerSettings, load_settings

log = logging.getLogger(__name__)
BATCH = 8  # one small real batch: enough to meet every shape and dtype
FIELD = re.compile(r"^([A-Za-z_][\w\[\].]*): (.+)$", re.DOTALL)


@dataclass
class CheckResult:
    """Per-field problems (empty: everything passed) and notes for the user."""

    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, exc: BaseException, default: str) -> None:
        """Record an error under the field its message names, else under `default`."""
        key, text = split_field(exc, default)
        self.errors.setdefault(key, text)


def split_field(exc: BaseException, default: str) -> tuple[str, str]:
    """("loss_functions.0.conf.from_logit", "unknown option ...") from a field-named error."""
    if isinstance(exc, TrainerError):
        found = FIELD.match(str(exc))
        if found:
            path = re.sub(r"\[(\d+)\]", r".\1", found.group(1))
            return path, found.group(2).strip()
        return default, str(exc)
    return default, one_line(exc)


def one_line(exc: BaseException, model: keras.Model | None = None) -> str:
    """The readable sentence of any exception (TensorFlow's included), naming the layer."""
    layers = [layer.name for layer in model.layers] if model is not None else []
    return failure.summarise(exc, layers=layers)[0]


def check(spec: RunSpec, settings: TrainerSettings) -> CheckResult:
    """Try the whole grid of `spec.config` on one batch; never raises for user mistakes."""
    result = CheckResult()
    try:
        train, val, test = load_data(spec, settings)
    except TrainerError as exc:
        result.add(exc, "dataset_train")
        return result
    splits = {"dataset_train": train, "dataset_val": val, "dataset_test": test}
    result.notes.extend(_data_notes(splits))
    try:
        model = load_model(spec.model, settings.max_params, settings.max_layer_output)
    except TrainerError as exc:
        result.add(exc, "model")
        return result
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        result.errors["model"] = "models with several inputs or outputs are not supported yet"
        return result
    batches = _check_losses(spec, model, splits, result)
    if batches:
        _check_optimizers(spec, settings, batches, result)
    return result


def _data_notes(splits: dict[str, Split | None]) -> list[str]:
    """What the loaders did to the data (label encoding, scaling), once per sentence."""
    notes: list[str] = []
    for role, split in splits.items():
        if split is None:
            continue
        for text in getattr(split, "notes", []):
            if text not in notes:
                notes.append(text)
        for column, codes in split.mappings.items():
            text = f"{role}: {column!r} encoded as " + ", ".join(
                f"{name}={i}" for i, name in enumerate(codes)
            )
            if text not in notes and not any(column in n for n in notes):
                notes.append(text)
    return notes


def _check_losses(
    spec: RunSpec, model: keras.Model, splits: dict[str, Split | None], result: CheckResult
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each loss, then each extra metric, on a real batch; the shaped batch of those passed."""
    config, passed = spec.config, {}
    classes = _classes(model)
    for li, loss in enumerate(config.loss_functions):
        where = f"loss_functions.{li}"
        try:
            name = compiling.loss_name(loss, f"loss_functions[{li}]")
            shaped = _shape_all(model, name, splits)
            x, y = shaped.x[:BATCH], shaped.y[:BATCH]
            loss_obj = compiling.build_loss(loss, f"loss_functions[{li}]")
            base = compiling.build_metrics(loss, [], classes)
            _, notes = compiling.metrics_and_notes(loss, config.extra_metrics, classes)  # options
        except TrainerError as exc:
            result.add(exc, where)
            continue
        if not _try(model, loss_obj, base, x, y, where, result):
            continue
        ok = True
        for i, metric in enumerate(config.extra_metrics):
            extra = compiling.build_metrics(loss, [metric], classes)[len(base) :]
            ok &= not extra or _try(model, loss_obj, extra, x, y, f"extra_metrics.{i}", result)
        if ok:
            passed[li] = (x, y)
            result.notes.extend(n for n in notes if n not in result.notes)
    return passed


def _shape_all(model: keras.Model, loss: str, splits: dict[str, Split | None]) -> Split:
    """Every split fitted to the model for this loss; the training split back."""
    shape = (model.input_shape, model.output_shape, loss)
    fitted = {r: shaping.fit_to_model(s, *shape, r) for r, s in splits.items() if s is not None}
    return fitted["dataset_train"]


def _try(
    model: keras.Model,
    loss: Any,
    metrics: list[Any],
    x: np.ndarray,
    y: np.ndarray,
    where: str,
    result: CheckResult,
) -> bool:
    """Compile and evaluate one batch (no weight update); record a failure under `where`."""
    try:
        model.compile(optimizer="sgd", loss=loss, metrics=metrics)
        values = model.test_on_batch(x, y, return_dict=True)
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises many types for one mistake
        log.info("pre-flight %s failed", where, exc_info=True)
        result.errors.setdefault(where, one_line(exc, model))
        return False
    if not np.isfinite(values.get("loss", 0.0)):
        result.errors.setdefault(
            where, "the loss is not a finite number on the first batch; check the labels "
            "against the loss (e.g. from_logits) and scale the inputs",
        )  # fmt: skip
        return False
    return True


def _check_optimizers(
    spec: RunSpec,
    settings: TrainerSettings,
    batches: dict[int, tuple[np.ndarray, np.ndarray]],
    result: CheckResult,
) -> None:
    """Each optimizer at each learning rate built; one training step on a fresh model."""
    config = spec.config
    li, (x, y) = next(iter(batches.items()))
    for oi, opt in enumerate(config.optimizers):
        where = f"optimizers.{oi}"
        try:
            built = [
                compiling.build_optimizer(opt, rate, f"optimizers[{oi}]")
                for rate in config.learning_rates
            ]
            model = load_model(spec.model, settings.max_params, settings.max_layer_output)
            model.compile(optimizer=built[0], loss=compiling.build_loss(config.loss_functions[li]))
            model.train_on_batch(x, y)
        except TrainerError as exc:
            result.add(exc, where)
        except Exception as exc:  # noqa: BLE001 - see _try
            log.info("pre-flight %s failed", where, exc_info=True)
            result.errors.setdefault(where, one_line(exc))


def _classes(model: keras.Model) -> int | None:
    """Units of the model's last axis (the number of classes for a classifier)."""
    last = model.output_shape[-1]
    return int(last) if isinstance(last, int) else None


def is_check(run_dir: Path) -> bool:
    """Whether RUN_DIR/run.json asks for a pre-flight rather than training."""
    try:
        return json.loads((run_dir / RUN_SPEC_FILE).read_bytes()).get("mode") == "check"
    except (OSError, ValueError, AttributeError):
        return False  # the runner reports a missing or broken run.json


def main(run_dir: Path) -> int:
    """Entry of a `check` run: write CHECK_FILE atomically; 0 unless the check crashed."""
    from trainer.runner import read_spec

    try:
        spec = read_spec(run_dir)
    except SpecError as exc:
        log.error("%s", exc)
        return 1
    result = check(spec, load_settings())
    tmp = run_dir / f".{CHECK_FILE}.tmp"
    tmp.write_text(json.dumps({"errors": result.errors, "notes": result.notes}))
    tmp.replace(run_dir / CHECK_FILE)
    log.info(
        "pre-flight of experiment %s: %d problem(s), %d note(s)",
        spec.experiment_id,
        len(result.errors),
        len(result.notes),
    )
    return 0
