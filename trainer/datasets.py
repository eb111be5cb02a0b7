"""Load a run's datasets into checked feature and label arrays, whatever the file format.

Text columns become class codes and uint8 features are scaled to 0-1; each such change is a
sentence in `Split.notes`, which the pre-flight check shows to the user at submit.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from schemas.experiment import ExperimentConfig
from trainer import formats
from trainer.errors import DatasetError

log = logging.getLogger(__name__)

FEATURE_KEYS = ("x", "X", "features", "feature", "data", "inputs", "images", "image")
LABEL_KEYS = ("y", "Y", "labels", "label", "target", "targets", "classes")
MAX_TEXT_CATEGORIES = 100  # a text feature with more values is names or ids, not categories
MISSING = "?"  # the category of a missing text feature value (Weka's spelling)
SHOWN = 10  # codes listed in a note before "..."


@dataclass
class Split:
    """Features and labels of one dataset file, the codes of its text columns, and notes."""

    x: np.ndarray
    y: np.ndarray
    mappings: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load_split(
    path: str | Path,
    role: str,
    config: ExperimentConfig,
    allow_pickle: bool = False,
    max_bytes: int = 4 * 1024**3,
    *,
    # another split's `mappings` (the training file's): a test file missing a class keeps codes
    categories: dict[str, list[str]] | None = None,
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
    known = categories or {}
    if kind == "npz":
        arrays = formats.npz_arrays(path, where, max_bytes)
        split, uint8 = _from_arrays(arrays, feature, label, role, where, known)
    else:
        table = _read_table(path, kind, where, allow_pickle, max_bytes, label)
        split, uint8 = _from_table(table, feature, label, role, where, known)
    if len(split.x) != len(split.y):
        raise DatasetError(f"{where}: {len(split.x)} feature rows but {len(split.y)} labels")
    if len(split.x) == 0:
        raise DatasetError(f"{where}: the dataset is empty")
    _scale(split, uint8, where)
    log.info("%s: %s file, %d samples, features %s", where, kind, len(split.x), split.x.shape[1:])
    return split


def _read_table(
    path: Path, kind: str, where: str, allow_pickle: bool, max_bytes: int, label: str | None
) -> formats.Table:
    if kind == "csv":
        return formats.read_csv(path, where, label)
    if kind == "arff":
        return formats.read_arff(path, where)
    if kind == "json":
        return formats.read_json(path, where)
    return formats.read_pickle(path, where, kind == "pickle_zip", allow_pickle, max_bytes)


def _from_arrays(
    arrays: dict[str, np.ndarray],
    feature: str | None,
    label: str | None,
    role: str,
    where: str,
    known: dict[str, list[str]],
) -> tuple[Split, bool]:
    """Features and labels of an NPZ file; class names (unicode labels) become codes."""
    x_key, y_key, notes = _pick_arrays(arrays, feature, label, role, where)
    x, y = arrays[x_key], arrays[y_key]
    if x.dtype.kind == "U":
        raise DatasetError(
            f"{where}: array {x_key}.npy has dtype {x.dtype}; features must be real "
            "numbers (bool, int or float): save them as numbers"
        )
    split = Split(_numeric(x, feature or "features", where), y, notes=notes)
    if _is_text(y):
        split.y, codes, more = _encode(y, y_key, True, known.get(y_key), where)
        split.mappings[y_key] = codes
        split.notes.extend(more)
    else:
        split.y = _numeric(y, label or "labels", where)
    return split, x.dtype == np.uint8


def _pick_arrays(
    arrays: dict[str, np.ndarray], feature: str | None, label: str | None, role: str, where: str
) -> tuple[str, str, list[str]]:
    """Keys of the features and labels: as configured, by name, or the only two there are."""
    keys = list(arrays)
    for name, value, field_name in ((feature, "features", "feature"), (label, "labels", "label")):
        if name is not None and name not in arrays:
            raise DatasetError(
                f"{where}: key {name!r} not in the NPZ file (keys: {', '.join(keys)}); "
                f"set {role}_{field_name}_name to the key holding the {value}"
            )
    if feature is not None and label is not None:
        return feature, label, []
    x_key = feature or _guess(keys, FEATURE_KEYS, role, exclude=label)
    y_key = label or _guess(keys, LABEL_KEYS, role, exclude=x_key)
    if x_key is None or y_key is None:
        if len(keys) != 2:
            raise DatasetError(
                f"{where}: cannot tell features from labels among keys "
                f"{', '.join(keys)}; set {role}_feature_name and {role}_label_name"
            )
        x_key, y_key = _by_shape(arrays, x_key, y_key)
    return (
        x_key,
        y_key,
        [
            f"{where}: NPZ key {x_key!r} holds the features and {y_key!r} the labels "
            f"(set {role}_feature_name and {role}_label_name to choose others)"
        ],
    )


def _guess(keys: list[str], stems: tuple[str, ...], role: str, exclude: str | None) -> str | None:
    for stem in stems:
        for key in (f"{stem}_{role}", stem, f"{role}_{stem}"):
            if key in keys and key != exclude:
                return key
    return None


def _by_shape(
    arrays: dict[str, np.ndarray], x_key: str | None, y_key: str | None
) -> tuple[str, str]:
    """Of two arrays, the one with fewer values per sample is the labels; else file order."""
    first, second = list(arrays)
    if x_key is not None or y_key is not None:
        x_key = x_key or (second if y_key == first else first)
        return x_key, y_key or (second if x_key == first else first)
    per_sample = [math.prod(arrays[k].shape[1:]) for k in (first, second)]
    # appendix C: the first array holds the features, the second the labels
    return (second, first) if per_sample[0] < per_sample[1] else (first, second)


def _from_table(
    table: formats.Table,
    feature: str | None,
    label: str | None,
    role: str,
    where: str,
    known: dict[str, list[str]],
) -> tuple[Split, bool]:
    """Features and labels of a table; text and nominal columns become class codes."""
    columns = {name: _column(values, name, where) for name, values in table.columns.items()}
    split = Split(np.empty(0), np.empty(0), notes=list(table.notes))
    label = _label_column(table, list(columns), label, role, where, split.notes)
    split.y = _convert(columns[label], label, True, table, known, split, where)
    if feature is not None and feature in columns:
        split.x = _convert(columns[feature], feature, False, table, known, split, where)
        return split, columns[feature].dtype == np.uint8
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
    x = [_convert(columns[c], c, False, table, known, split, where) for c in names]
    split.x = np.stack(x, axis=1)
    return split, all(columns[c].dtype == np.uint8 for c in names)


def _label_column(
    table: formats.Table,
    names: list[str],
    label: str | None,
    role: str,
    where: str,
    notes: list[str],
) -> str:
    """The configured label column, else `label`, else the last (ARFF, numbered columns)."""
    numbered = names == [str(i) for i in range(len(names))]
    if label is None and "label" in names:
        return "label"
    if label is None:
        label = table.default_label or (names[-1] if numbered and names else None)
        if label is not None:
            notes.append(
                f"{where}: no label column is set, so the last column, {label!r}, is the "
                f"label (set label_column or {role}_label_name to choose another)"
            )
    if label is None or label not in names:
        shown = f"{label!r} is not a column" if label else "no label column is named"
        numbers = " (the columns have no names, only numbers)" if numbered else ""
        raise DatasetError(
            f"{where}: {shown}; set label_column (or {role}_label_name) to one "
            f"of: {', '.join(names[:20])}{numbers}"
        )
    return label


def _convert(
    values: np.ndarray,
    name: str,
    is_label: bool,
    table: formats.Table,
    known: dict[str, list[str]],
    split: Split,
    where: str,
) -> np.ndarray:
    """One column as float64: numbers checked, text and nominal values as class codes."""
    if name not in table.mappings and not _is_text(values):
        return _numeric(values, name, where)
    declared = known.get(name, table.mappings.get(name))
    codes, categories, notes = _encode(values, name, is_label, declared, where)
    split.mappings[name] = categories
    split.notes.extend(notes)
    return codes


def _is_text(values: np.ndarray) -> bool:
    """Whether a column is class names: text only (or missing), none of it a number."""
    if values.ndim != 1 or values.dtype.kind not in "OU":
        return False
    if not all(isinstance(v, str) or _missing(v) for v in values.tolist()):
        return False
    seen = {v for v in values.tolist() if isinstance(v, str)}
    return bool(seen) and not any(formats.is_number(v) for v in seen)


def _encode(
    values: np.ndarray, name: str, is_label: bool, declared: list[str] | None, where: str
) -> tuple[np.ndarray, list[str], list[str]]:
    """Codes of a text column in `declared` order (else sorted), its categories, and notes."""
    texts = [None if _missing(v) else str(v) for v in values.tolist()]
    missing = [row for row, text in enumerate(texts) if text is None]
    what = "label column" if is_label else "feature column"
    if missing and is_label:
        raise DatasetError(
            f"{where}: label column {name!r} has {_rows(len(missing), 'missing value')}, "
            f"first at row {missing[0]}; give every sample its class or drop those rows"
        )
    categories = (
        list(declared) if declared is not None else sorted({t for t in texts if t is not None})
    )
    _check_categories(texts, categories, name, is_label, declared is not None, where)
    notes = [f"{where}: {what} {name!r} encoded as {_listing(categories)}"]
    if missing:
        if MISSING not in categories:
            categories.append(MISSING)
        notes.append(
            f"{where}: {_rows(len(missing), 'missing value')} in {name!r} read as one more "
            f"category, {MISSING!r}, code {categories.index(MISSING)}"
        )
    index = {text: code for code, text in enumerate(categories)}
    codes = np.array([index[MISSING if t is None else t] for t in texts], dtype=np.float64)
    return codes, categories, notes


def _check_categories(
    texts: list[str | None],
    categories: list[str],
    name: str,
    is_label: bool,
    declared: bool,
    where: str,
) -> None:
    """Refuse values outside the given classes and text features with too many values."""
    if declared:
        allowed = set(categories)
        unknown = next((t for t in texts if t is not None and t not in allowed), None)
        if unknown is not None:
            raise DatasetError(
                f"{where}: column {name!r} has the value {unknown!r}, which is not one of "
                f"its classes ({', '.join(categories[:SHOWN])}); use the training file's classes"
            )
    elif not is_label and len(categories) > MAX_TEXT_CATEGORIES:
        raise DatasetError(
            f"{where}: text column {name!r} has {len(categories)} different values (e.g. "
            f"{categories[0]!r}); text features are encoded as categories only up to "
            f"{MAX_TEXT_CATEGORIES} values: drop the column or turn it into numbers"
        )


def _listing(categories: list[str]) -> str:
    """`setosa=0, versicolor=1, ...` up to SHOWN codes."""
    shown = ", ".join(f"{text}={code}" for code, text in enumerate(categories[:SHOWN]))
    more = len(categories) - SHOWN
    return shown + (f", ... ({len(categories)} classes in all)" if more > 0 else "")


def _rows(count: int, what: str) -> str:
    """`1 missing value`, `3 missing values`."""
    return f"{count} {what}" + ("" if count == 1 else "s")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _scale(split: Split, uint8: bool, where: str) -> None:
    """uint8 features (pixels 0-255) divided by 255; a note either way on what was done."""
    low, high = float(split.x.min()), float(split.x.max())
    size = "×".join(str(d) for d in split.x.shape[1:]) or "1"
    head = f"{where}: {len(split.x)} samples of {size} features"
    if uint8 and high > 1:  # 0/1 flags stored as uint8 stay 0/1
        split.x = split.x / 255.0
        split.notes.append(
            f"{head}; the features were uint8 {low:g}–{high:g} and are scaled to "
            f"{low / 255:.3g}–{high / 255:.3g} (divided by 255); a model with its own "
            "Rescaling(1/255) layer would scale them twice"
        )
    else:
        split.notes.append(f"{head}, values {low:g}–{high:g}, used as they are (not scaled)")


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
            f"{row}; every feature and label must be a number (a column holding only "
            "text is read as class names): fix that value"
        ) from None
    finite = np.isfinite(array)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        what = "missing (NaN)" if np.isnan(array).any() else "infinite"
        raise DatasetError(
            f"{where}: column {name!r} has {int((~finite).sum())} {what} "
            f"values, first at row {row}; fill or drop them before uploading (e.g. pandas "
            "df.fillna(df.mean(numeric_only=True)) or df.dropna())"
        )
    return array


def _first_bad(values: Any) -> tuple[Any, int]:
    for row, value in enumerate(np.asarray(values, dtype=object).ravel()):
        try:
            float(value)
        except (TypeError, ValueError, OverflowError):
            return str(value)[:40] if isinstance(value, int) else value, row
    return None, -1
