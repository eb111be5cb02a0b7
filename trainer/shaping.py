"""Fit datasets to a model (shapes, label ranges) and cut folds and validation splits."""

from __future__ import annotations

import math

import numpy as np

from trainer.compiling import BINARY_LOSSES, ONE_HOT_LOSSES, SPARSE_LOSSES
from trainer.datasets import Split
from trainer.errors import DatasetError


def fit_to_model(
    split: Split, input_shape: tuple, output_shape: tuple, loss: str, where: str
) -> Split:
    """Reshape features to the model's input and check labels against its output and loss."""
    x = _features(split.x, tuple(input_shape[1:]), where)
    y = _labels(split.y, int(output_shape[-1] or 0), loss, where)
    if loss not in SPARSE_LOSSES | ONE_HOT_LOSSES:
        _check_label_shape(y, tuple(output_shape[1:]), where)
    return Split(x, y, split.mappings, split.notes)


def _check_label_shape(y: np.ndarray, expected: tuple, where: str) -> None:
    """Regression and binary labels carry as many values per sample as the model outputs."""
    got = tuple(y.shape[1:])
    if None in expected or math.prod(got) == math.prod(expected):
        return
    raise DatasetError(
        f"{where}: each label has shape {got} but the model outputs {expected} per "
        "sample; give one target per output unit or change the last layer's units"
    )


def _features(x: np.ndarray, expected: tuple, where: str) -> np.ndarray:
    got = tuple(x.shape[1:])
    if got == expected or (None in expected and len(got) == len(expected)):
        return x.astype(np.float32)
    if None not in expected and int(np.prod(got)) == int(np.prod(expected)):
        return x.reshape((len(x), *expected)).astype(np.float32)
    raise DatasetError(
        f"{where}: each sample has shape {got} but the model's input expects "
        f"{expected}; reshape the data or change the model's Input shape"
    )


def _labels(y: np.ndarray, units: int, loss: str, where: str) -> np.ndarray:
    integral = bool(np.all(np.equal(np.mod(y, 1), 0)))
    if loss in SPARSE_LOSSES or (loss in ONE_HOT_LOSSES and y.ndim == 1):
        _check_classes(y, units, integral, where)
        y = y.astype(np.int64)
        return np.eye(units, dtype=np.float32)[y] if loss in ONE_HOT_LOSSES else y
    if loss in ONE_HOT_LOSSES and y.shape[1:] != (units,):
        raise DatasetError(
            f"{where}: one-hot labels have {y.shape[1:]} columns but the model has {units} outputs"
        )
    if loss in BINARY_LOSSES and (y.min() < 0 or y.max() > 1):
        raise DatasetError(f"{where}: binary labels must lie in 0..1, found {y.min()}..{y.max()}")
    return y.astype(np.float32)


def _check_classes(y: np.ndarray, units: int, integral: bool, where: str) -> None:
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise DatasetError(
            f"{where}: labels must be one class index per sample, got shape "
            f"{y.shape[1:]} per sample"
        )
    if not integral:
        raise DatasetError(f"{where}: labels must be whole class indices 0..{units - 1}")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= units:
        bad = low if low < 0 else high
        raise DatasetError(
            f"{where}: label {bad} is outside 0..{units - 1} for a model with "
            f"{units} outputs; labels must be class indices or the last "
            "layer needs more units"
        )


def is_classes(y: np.ndarray, folds: int = 2) -> bool:
    """Whether labels look like class indices with enough members to stratify."""
    if y.ndim != 1 or not np.all(np.equal(np.mod(y, 1), 0)):
        return False
    _, counts = np.unique(y, return_counts=True)
    return len(counts) <= max(2, len(y) // 2) and counts.min() >= folds


def fold_indices(y: np.ndarray, folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices of the 1-based `fold` of `folds` (stratified for classes)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if not 1 <= fold <= folds:
        raise DatasetError(f"plan.fold: {fold} is outside 1..{folds}")
    if len(y) < folds:
        raise DatasetError(f"k_fold_validation: {folds} folds need at least {folds} samples")
    labels = y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y
    if is_classes(labels, folds):
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    train, val = list(splitter.split(np.zeros(len(y)), labels))[fold - 1]
    return train, val


def holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (stratified where possible) train/validation indices for validation_split."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    stratify = y if is_classes(y) else None
    try:
        train, val = train_test_split(
            index, test_size=fraction, random_state=seed, stratify=stratify
        )
    except ValueError:
        train, val = train_test_split(index, test_size=fraction, random_state=seed)
    return np.sort(train), np.sort(val)
