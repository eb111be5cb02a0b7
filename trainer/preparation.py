"""Everything before `fit`: datasets loaded, split, shaped, and the model built and compiled."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import keras
import numpy as np

from schemas.run import RunSpec
from trainer import compiling, shaping
from trainer.datasets import Split, load_split
from trainer.errors import ModelError
from trainer.model import load_model
from trainer.settings import TrainerSettings

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A compiled model and the data it trains, validates and is tested on."""

    model: keras.Model
    train: Split
    val: Split | None
    test: Split | None


def load_data(spec: RunSpec, settings: TrainerSettings) -> tuple[Split, Split | None, Split | None]:
    """Train, validation and test splits; K-fold and validation_split cut from train only."""
    config, plan, paths = spec.config, spec.plan, spec.datasets
    load = partial(
        load_split,
        config=config,
        allow_pickle=spec.allow_pickle,
        max_bytes=settings.max_dataset_bytes,
    )
    local = settings.dataset_path
    train = load(local(paths.train), "train")
    # The other files use the training file's codes: a class missing from one keeps its number.
    val = load(local(paths.val), "val", categories=train.mappings) if paths.val else None
    test = load(local(paths.test), "test", categories=train.mappings) if paths.test else None
    if plan.folds > 1:
        # The test file never enters the folds: only the training file is split.
        if val is not None:
            log.info(
                "simulation %s: K-fold replaces dataset_val with fold %s of %d",
                spec.simulation_id,
                plan.fold,
                plan.folds,
            )
        fit_idx, val_idx = shaping.fold_indices(train.y, plan.folds, plan.fold or 1, spec.seed)
        train, val = _take(train, fit_idx), _take(train, val_idx)
    elif val is None and config.validation_split:
        fit_idx, val_idx = shaping.holdout(train.y, config.validation_split, spec.seed)
        train, val = _take(train, fit_idx), _take(train, val_idx)
    return train, val, test


def _take(split: Split, index: np.ndarray) -> Split:
    return Split(split.x[index], split.y[index], split.mappings, split.notes)


def prepare(spec: RunSpec, settings: TrainerSettings) -> Prepared:
    """Load and check the data and model, then compile with the plan's choices."""
    train, val, test = load_data(spec, settings)
    model = load_model(spec.model, settings.max_params, settings.max_layer_output)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError("model: models with several inputs or outputs are not supported yet")
    plan = spec.plan
    loss = compiling.loss_name(plan.loss, "loss_functions")
    shape = (model.input_shape, model.output_shape, loss)
    train = shaping.fit_to_model(train, *shape, "dataset_train")
    val = shaping.fit_to_model(val, *shape, "dataset_val") if val is not None else None
    test = shaping.fit_to_model(test, *shape, "dataset_test") if test is not None else None
    model.compile(
        optimizer=compiling.build_optimizer(plan.optimizer, plan.learning_rate, "optimizers"),
        loss=compiling.build_loss(plan.loss, "loss_functions"),
        metrics=compiling.build_metrics(plan.loss, spec.config.extra_metrics),
    )
    return Prepared(model, train, val, test)


def probe_batch(train: Split, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random sample of the training set, the same at every logged epoch."""
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(train.x), size=min(size, len(train.x)), replace=False))
    return train.x[index], train.y[index]
