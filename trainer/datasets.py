"""Load a run's datasets into checked feature and label arrays, whatever the file format."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from schemas.experiment import ExperimentConfig
from trainer import formats
from trainer.errors import DatasetError

log = logging.getLogger(__name__)

FEATURE_KEYS = ("x", "X", "features", "feature", "data", "inputs")
LABEL_KEYS = ("y", "Y", "labels", "label", "target", "targets")


@dataclass
class Split:
    """Features and labels of one dataset file."""

    x: np.ndarray
    y: np.ndarray
    mappings: dict[str, list[str]] = field(default_factory=dict)


def load_split(
    path: str | Path,
    role: str,
    config: ExperimentConfig,
    allow_pickle: bool = False,
    max_bytes: int = 4 * 1024**3,
) -> Split:
    """Read `dataset_<role>` in any supported format and check every value is a finite number."""
    where, path = f"dataset_{role}", Path(path)
    if not path.is_file():
        raise DatasetError(f"{where}: file {path.name} not found")
    kind = formats.sniff(path)
    # Archives are checked on what they unpack to (formats.check_zip); every other file,
    # plain pickles included, on its size before anything reads it.
    if kind not in ("npz", "pickle_zip") and path.stat().st_size > max_bytes:
        raise DatasetError(
            f"{where}: file is {path.stat().st_size} bytes, over the size limit of {max_bytes}; "
            "use a smaller dataset or ask the operator to raise NNT_TRAINER_MAX_DATASET_BYTES"
        )
    feature = getattr(config, f"{role}_feature_name")
    label = getattr(config, f"{role}_label_name") or config.label_column
    if kind == "npz":
        arrays = formats.npz_arrays(path, where, max_bytes)
        x, y = _pick_arrays(arrays, feature, label, role, where)
        split = Split(
            _numeric(x, feature or "features", where), _numeric(y, label or "labels", where)
        )
    else:
        table = _read_table(path, kind, where, allow_pickle, max_bytes)
        split = _from_table(table, feature, label, role, where)
    if len(split.x) != len(split.y):
        raise DatasetError(f"{where}: {len(split.x)} feature rows but {len(split.y)} labels")
    if len(split.x) == 0:
        raise DatasetError(f"{where}: the dataset is empty")
    log.info("%s: %s file, %d samples, features %s", where, kind, len(split.x), split.x.shape[1:])
    return split


def _read_table(
    path: Path, kind: str, where: str, allow_pickle: bool, max_bytes: int
) -> formats.Table:
    if kind == "csv":
        return formats.read_csv(path, where)
    if kind == "arff":
        return formats.read_arff(path, where)
    if kind == "json":
        return formats.read_json(path, where)
    return formats.read_pickle(path, where, kind == "pickle_zip", allow_pickle, max_bytes)


def _pick_arrays(
    arrays: dict[str, np.ndarray], feature: str | None, label: str | None, role: str, where: str
) -> tuple[np.ndarray, np.ndarray]:
    keys = list(arrays)
    for name, value, field_name in ((feature, "features", "feature"), (label, "labels", "label")):
        if name is not None and name not in arrays:
            raise DatasetError(
                f"{where}: key {name!r} not in the NPZ file (keys: {', '.join(keys)}); "
                f"set {role}_{field_name}_name to the key holding the {value}"
            )
    feature = feature or _guess(keys, FEATURE_KEYS, role, exclude=label)
    label = label or _guess(keys, LABEL_KEYS, role, exclude=feature)
    if feature is None or label is None:
        if len(keys) != 2:
            raise DatasetError(
                f"{where}: cannot tell features from labels among keys "
                f"{', '.join(keys)}; set {role}_feature_name and {role}_label_name"
            )
        feature, label = (
            feature or next(k for k in keys if k != label),
            label or next(k for k in keys if k != feature),
        )
    return arrays[feature], arrays[label]


def _guess(keys: list[str], stems: tuple[str, ...], role: str, exclude: str | None) -> str | None:
    for stem in stems:
        for key in (f"{stem}_{role}", stem, f"{role}_{stem}"):
            if key in keys and key != exclude:
                return key
    return None


def _from_table(
    table: formats.Table, feature: str | None, label: str | None, role: str, where: str
) -> Split:
    columns = {name: _column(values, name, where) for name, values in table.columns.items()}
    if label is None:
        label = "label" if "label" in columns else None
    if label is None or label not in columns:
        shown = f"{label!r} is not a column" if label else "no label column is named"
        raise DatasetError(
            f"{where}: {shown}; set label_column (or {role}_label_name) to one "
            f"of: {', '.join(list(columns)[:20])}"
        )
    y = _numeric(columns[label], label, where)
    if feature is not None and feature in columns:
        x = _numeric(columns[feature], feature, where)
    else:
        names = [c for c in columns if c != label]
        if not names:
            raise DatasetError(f"{where}: no feature columns besides the label {label!r}")
        for name in names:
            if columns[name].shape != columns[label].shape:
                raise DatasetError(
                    f"{where}: column {name!r} has {len(columns[name])} values but the "
                    f"label column {label!r} has {len(columns[label])}; every column "
                    "needs one value per sample"
                )
        x = np.stack([_numeric(columns[c], c, where) for c in names], axis=1)
    return Split(x, y, dict(table.mappings))


def _column(values: Any, name: str, where: str) -> np.ndarray:
    """One column as an array; ragged rows (lists of different lengths) refused by name."""
    try:
        return np.asarray(values)
    except ValueError:
        raise DatasetError(
            f"{where}: column {name!r} is ragged (its rows have different lengths or "
            "nesting); give every sample the same number of values"
        ) from None


def _numeric(values: np.ndarray, name: str, where: str) -> np.ndarray:
    """A float64 copy of a column or array; non-numbers, NaN and inf refused by name."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        bad, row = _first_bad(values)
        raise DatasetError(
            f"{where}: column {name!r} has a non-numeric value {bad!r} at row "
            f"{row}; every feature and label must be a number (encode classes "
            "as integers 0..K-1)"
        ) from None
    finite = np.isfinite(array)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        what = "missing (NaN)" if np.isnan(array).any() else "infinite"
        raise DatasetError(
            f"{where}: column {name!r} has {int((~finite).sum())} {what} "
            f"values, first at row {row}; fill or drop them"
        )
    return array


def _first_bad(values: Any) -> tuple[Any, int]:
    for row, value in enumerate(np.asarray(values, dtype=object).ravel()):
        try:
            float(value)
        except (TypeError, ValueError, OverflowError):
            return str(value)[:40] if isinstance(value, int) else value, row
    return None, -1
