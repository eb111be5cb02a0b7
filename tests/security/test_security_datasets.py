"""Hostile dataset files: allocation bombs, pickles, bad values and wrong layouts are refused.

Each case writes one crafted file and calls `load_split` (or `fit_to_model` for the checks
against the model), expecting a DatasetError that names the column, key or array and the fix.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import resource
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from schemas.experiment import ExperimentConfig
from trainer.datasets import Split, load_split
from trainer.errors import DatasetError
from trainer.shaping import fit_to_model

CAP = 1024 * 1024  # a 1 MiB operator limit keeps every bomb in this file small and fast


class Canary:
    """Unpickling this creates the canary file (open(path, "w")): proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A hand-written .npy header declaring `shape`, with no data after it."""
    buf = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)  # type: ignore[no-untyped-call]
    return b"\x93NUMPY\x01\x00" + buf.getvalue()[8:]


def zip_members(path: Path, members: dict[str, bytes], deflate: bool = False) -> Path:
    mode = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", mode) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def text(path: Path, content: str) -> Path:
    path.write_text(content)
    return path


def raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def pickled(path: Path, canary: Path) -> Path:
    path.write_bytes(pickle.dumps(Canary(canary)))
    return path


def huge_shape(d: Path, c: Path) -> Path:
    header = npy_header((100_000, 100_000))
    return zip_members(d / "huge.npz", {"x.npy": header, "y.npy": header})


def overflowing_shape(d: Path, c: Path) -> Path:
    header = npy_header((2**32, 2**32, 16))  # the byte count overflows int64 to 0
    return zip_members(d / "overflow.npz", {"x.npy": header, "y.npy": header})


def forged_shape(d: Path, c: Path) -> Path:
    header = npy_header((300, 300))  # under the cap, but the member holds no data
    return zip_members(d / "forged.npz", {"x.npy": header, "y.npy": header})


def zip_bomb(d: Path, c: Path) -> Path:
    buf = io.BytesIO()
    np.save(buf, np.zeros(8 * CAP))  # 64 MiB of zeros deflates to a few dozen KiB
    small = io.BytesIO()
    np.save(small, np.zeros(3))
    path = zip_members(d / "bomb.npz", {"x.npy": buf.getvalue(), "y.npy": small.getvalue()}, True)
    assert path.stat().st_size < CAP
    return path


def object_array(d: Path, c: Path) -> Path:
    buf = io.BytesIO()
    np.save(buf, np.array([Canary(c), 1], dtype=object), allow_pickle=True)
    return zip_members(d / "objects.npz", {"x.npy": buf.getvalue(), "y.npy": buf.getvalue()})


def zipped_pickle(d: Path, c: Path) -> Path:
    return zip_members(d / "frame.zip", {"frame.pkl": pickle.dumps(Canary(c))})


def pickle_as_npz(d: Path, c: Path) -> Path:
    return pickled(d / "disguised.npz", c)


def pickle_as_csv(d: Path, c: Path) -> Path:
    path = d / "disguised.csv"
    path.write_bytes(pickle.dumps(Canary(c), protocol=0))  # protocol 0 is plain text
    return path


def gzipped_csv(d: Path, c: Path) -> Path:
    path = d / "bomb.csv.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"a,label\n" + b"1,0\n" * (2 * CAP))
    return path


# (id, file builder(dir, canary), loader keyword arguments, regex of the message)
CASES: list[tuple[str, Callable[[Path, Path], Path], dict[str, Any], str]] = [
    ("npz-huge-declared-shape", huge_shape, {}, r"x\.npy of shape \(100000, 100000\) needs"),
    ("npz-shape-overflows-int64", overflowing_shape, {}, r"x\.npy of shape .* over the limit"),
    ("npz-forged-header", forged_shape, {}, r"x\.npy declares shape \(300, 300\).*save it again"),
    ("npz-zip-bomb", zip_bomb, {}, r"unpacks to \d+ bytes, over the limit of 1048576.*NNT_"),
    ("npz-object-array", object_array, {}, r"x\.npy holds Python objects; save plain numbers"),
    (
        "npz-scalar-array",
        lambda d, c: npz(d / "s.npz", x=np.float64(1), y=np.float64(0)),
        {},
        r"x\.npy is a single value; save one row per sample",
    ),
    (
        "npz-complex-dtype",
        lambda d, c: npz(d / "c.npz", x=np.ones((2, 2)) * 1j, y=np.zeros(2)),
        {},
        r"x\.npy has dtype complex128; features and labels must be real numbers",
    ),
    (
        "npz-string-array",
        lambda d, c: npz(d / "u.npz", x=np.array([["a"], ["b"]]), y=np.zeros(2)),
        {},
        r"x\.npy has dtype <U1",
    ),
    (
        "npz-not-a-zip",
        lambda d, c: raw(d / "bad.npz", b"PK\x03\x04 not a zip"),
        {},
        r"not a valid zip/NPZ file",
    ),
    ("pickle-off", lambda d, c: pickled(d / "frame.pkl", c), {}, r"pickle files are disabled"),
    (
        "pickle-off-no-extension",
        lambda d, c: pickled(d / "upload", c),
        {},
        r"pickle files are disabled.*convert the DataFrame to CSV",
    ),
    ("zip-pickle-off", zipped_pickle, {}, r"pickle files are disabled"),
    ("pickle-disguised-as-npz", pickle_as_npz, {}, r"not a valid zip/NPZ file"),
    ("pickle-disguised-as-csv", pickle_as_csv, {}, r"cannot parse the CSV|set label_column"),
    ("gzip-csv-not-inflated", gzipped_csv, {}, r"cannot parse the CSV file.*plain UTF-8 CSV"),
    (
        "npz-nan",
        lambda d, c: npz(d / "n.npz", x=np.array([[1.0], [np.nan]]), y=np.zeros(2)),
        {},
        r"column 'features' has 1 missing \(NaN\) values, first at row 1; fill or drop",
    ),
    (
        "npz-inf-label",
        lambda d, c: npz(d / "i.npz", x=np.ones((2, 1)), y=np.array([0.0, np.inf])),
        {},
        r"column 'labels' has 1 infinite values",
    ),
    (
        "csv-inf",
        lambda d, c: text(d / "i.csv", "a,b,label\n1,inf,0\n2,3,1\n"),
        {},
        r"column 'b' has 1 infinite values, first at row 0",
    ),
    (
        "csv-nan",
        lambda d, c: text(d / "n.csv", "a,b,label\n1,,0\n2,3,1\n"),
        {},
        r"column 'b' has 1 missing \(NaN\) values",
    ),
    (
        "csv-string-in-numeric-column",
        lambda d, c: text(d / "s.csv", "a,b,label\n1,2,0\n2,three,1\n"),
        {},
        r"column 'b' has a non-numeric value 'three' at row 1; every feature .* must be a number",
    ),
    (
        "arff-missing-value",
        lambda d, c: text(
            d / "m.arff", "@relation r\n@attribute a numeric\n@attribute label {x,y}\n@data\n?,x\n"
        ),
        {},
        r"column 'a' has 1 missing \(NaN\) values",
    ),
    (
        "arff-string-attribute",
        lambda d, c: text(
            d / "s.arff", "@relation r\n@attribute note string\n@attribute label {x,y}\n@data\n"
        ),
        {},
        r"attribute 'note' is of type STRING; only NUMERIC, REAL, INTEGER and nominal",
    ),
    (
        "arff-date-attribute",
        lambda d, c: text(
            d / "d.arff",
            "@relation r\n@attribute 'when' date 'yyyy-MM-dd'\n@attribute label {x,y}\n@data\n",
        ),
        {},
        r"attribute 'when' is of type DATE.*encode it as numbers or drop it",
    ),
    (
        "json-nan",
        lambda d, c: text(d / "n.json", '{"a": [1, NaN], "label": [0, 1]}'),
        {},
        r"column 'a' has 1 missing \(NaN\) values",
    ),
    (
        "json-infinity",
        lambda d, c: text(d / "i.json", '{"a": [1, -Infinity], "label": [0, 1]}'),
        {},
        r"column 'a' has 1 infinite values",
    ),
    (
        "json-ragged-column",
        lambda d, c: text(d / "r.json", json.dumps({"x": [[1, 2], [3]], "label": [0, 1]})),
        {},
        r"column 'x' is ragged.*same number of values",
    ),
    (
        "json-columns-of-different-lengths",
        lambda d, c: text(d / "l.json", json.dumps({"a": [1, 2, 3], "label": [0, 1]})),
        {},
        r"column 'a' has 3 values but the label column 'label' has 2",
    ),
    (
        "json-object-in-column",
        lambda d, c: text(d / "o.json", json.dumps({"a": [{"$eval": "x"}, 1], "label": [0, 1]})),
        {},
        r"column 'a' has a non-numeric value",
    ),
    (
        "json-huge-integer",
        lambda d, c: text(d / "h.json", '{"a": [1, 1' + "0" * 400 + '], "label": [0, 1]}'),
        {},
        r"column 'a' has a non-numeric value '1000",
    ),
    (
        "json-not-an-object",
        lambda d, c: text(d / "t.json", "[[1, 0], [2, 1]]"),
        {},
        r"must be an object mapping each column name to a list",
    ),
    (
        "npz-wrong-keys",
        lambda d, c: npz(d / "k.npz", images=np.ones((2, 1)), classes=np.zeros(2)),
        {"config": {"train_feature_name": "x_train"}},
        r"key 'x_train' not in the NPZ file \(keys: images, classes\); set train_feature_name",
    ),
    (
        "missing-label-column",
        lambda d, c: text(d / "c.csv", "a,b,target\n1,2,0\n"),
        {"config": {"label_column": "class"}},
        r"'class' is not a column; set label_column .* to one of: a, b, target",
    ),
    (
        "empty-dataset",
        lambda d, c: text(d / "e.csv", "a,label\n"),
        {},
        r"dataset_train: the dataset is empty",
    ),
    (
        "empty-file",
        lambda d, c: text(d / "e.csv", ""),
        {},
        r"cannot parse the CSV file",
    ),
    (
        "only-a-label-column",
        lambda d, c: text(d / "o.csv", "label\n1\n"),
        {},
        r"no feature columns besides the label 'label'",
    ),
]


@pytest.mark.parametrize(
    ("build", "options", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_it_refuses_hostile_datasets(
    build: Callable[[Path, Path], Path],
    options: dict[str, Any],
    message: str,
    tmp_path: Path,
    canary: Path,
) -> None:
    path = build(tmp_path, canary)
    config = ExperimentConfig(dataset_train="stored:x", **options.get("config", {}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DatasetError, match=message):
        load_split(path, "train", config, allow_pickle=False, max_bytes=CAP)
    grew_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grew_kib < 256 * 1024, "a refused file was allocated in memory first"
    assert not canary.exists()


FITS: list[tuple[str, Split, tuple[tuple[Any, ...], tuple[Any, ...], str], str]] = [
    (
        "label-out-of-range",
        Split(np.ones((3, 4)), np.array([0.0, 1.0, 7.0])),
        ((None, 4), (None, 3), "SparseCategoricalCrossentropy"),
        r"label 7 is outside 0..2 for a model with 3 outputs",
    ),
    (
        "negative-label",
        Split(np.ones((2, 4)), np.array([0.0, -1.0])),
        ((None, 4), (None, 3), "SparseCategoricalCrossentropy"),
        r"label -1 is outside 0..2",
    ),
    (
        "fractional-class-label",
        Split(np.ones((2, 4)), np.array([0.0, 1.5])),
        ((None, 4), (None, 3), "SparseCategoricalCrossentropy"),
        r"labels must be whole class indices 0..2",
    ),
    (
        "feature-shape-mismatch",
        Split(np.ones((2, 5)), np.zeros(2)),
        ((None, 4), (None, 3), "SparseCategoricalCrossentropy"),
        r"each sample has shape \(5,\) but the model's input expects \(4,\); reshape",
    ),
    (
        "regression-target-shape-mismatch",
        Split(np.ones((2, 4)), np.ones((2, 3))),
        ((None, 4), (None, 1), "MeanSquaredError"),
        r"each label has shape \(3,\) but the model outputs \(1,\) per sample",
    ),
    (
        "binary-label-out-of-range",
        Split(np.ones((2, 4)), np.array([0.0, 2.0])),
        ((None, 4), (None, 1), "BinaryCrossentropy"),
        r"binary labels must lie in 0..1",
    ),
]


@pytest.mark.parametrize(
    ("split", "model", "message"), [f[1:] for f in FITS], ids=[f[0] for f in FITS]
)
def test_it_refuses_data_that_does_not_fit_the_model(
    split: Split, model: tuple[tuple[Any, ...], tuple[Any, ...], str], message: str
) -> None:
    with pytest.raises(DatasetError, match=rf"dataset_val: {message}"):
        fit_to_model(split, *model, "dataset_val")


def test_it_refuses_an_allowed_plain_pickle_over_the_limit_before_unpickling(
    tmp_path: Path, canary: Path
) -> None:
    # Even where the operator allows pickles, a plain one past the size cap is never opened.
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps([Canary(canary), b"\0" * CAP]))
    config = ExperimentConfig(dataset_train="stored:x")
    with pytest.raises(
        DatasetError, match=rf"dataset_train: file is \d+ bytes, over the size limit of {CAP}"
    ):
        load_split(path, "train", config, allow_pickle=True, max_bytes=CAP)
    assert not canary.exists()
