"""Readers for the dataset formats of appendix C: NPZ, CSV, ARFF, JSON, pandas pickle.

Each reader returns either arrays (NPZ, JSON with a matrix key) or a table of columns;
`trainer.datasets` turns both into checked feature and label arrays.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import DatasetError

TEXT_SNIFF_BYTES = 4096


@dataclass
class Table:
    """Named columns of one dataset file, plus the codes given to nominal values."""

    columns: dict[str, Any]
    mappings: dict[str, list[str]] = field(default_factory=dict)


def sniff(path: Path) -> str:
    """Format of a file from its extension, else from its first bytes."""
    suffix = path.suffix.lower().lstrip(".")
    aliases = {
        "pkl": "pickle",
        "pickle": "pickle",
        "zip": "zip",
        "npz": "npz",
        "csv": "csv",
        "arff": "arff",
        "json": "json",
    }
    if suffix in aliases:
        return "pickle_zip" if suffix == "zip" else aliases[suffix]
    with path.open("rb") as f:
        head = f.read(TEXT_SNIFF_BYTES)
    if head.startswith(b"PK"):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        return "npz" if names and all(n.endswith(".npy") for n in names) else "pickle_zip"
    if head.startswith(b"\x80"):
        return "pickle"
    text = "\n".join(
        ln for ln in head.decode("utf-8", "replace").splitlines() if not ln.lstrip().startswith("%")
    ).lstrip()
    if text.startswith(("{", "[")):
        return "json"
    return "arff" if text.lower().startswith("@relation") else "csv"


def check_zip(path: Path, where: str, max_bytes: int) -> None:
    """Refuse archives whose members would decompress past the limit (zip bombs)."""
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{where}: not a valid zip/NPZ file ({exc})") from exc
    if total > max_bytes:
        raise DatasetError(
            f"{where}: unpacks to {total} bytes, over the limit of {max_bytes}; "
            "use a smaller dataset or ask the operator to raise "
            "NNT_TRAINER_MAX_DATASET_BYTES"
        )


def npz_arrays(path: Path, where: str, max_bytes: int) -> dict[str, np.ndarray]:
    """Every array of an NPZ file, shapes and dtypes checked before loading."""
    check_zip(path, where, max_bytes)
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            with zf.open(info) as f:
                _check_npy_header(f, info.filename, where, max_bytes)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as exc:
        raise DatasetError(f"{where}: cannot read the NPZ file: {exc}") from exc


def _check_npy_header(f: Any, name: str, where: str, max_bytes: int) -> None:
    try:
        version = np.lib.format.read_magic(f)
        reader = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = reader(f)
    except ValueError as exc:
        raise DatasetError(f"{where}: member {name} is not a NumPy array ({exc})") from exc
    if dtype.hasobject:
        raise DatasetError(
            f"{where}: array {name} holds Python objects; save plain numbers "
            "(numeric dtypes) with numpy.savez"
        )
    if int(np.prod(shape)) * dtype.itemsize > max_bytes:
        raise DatasetError(f"{where}: array {name} of shape {shape} is over the size limit")


def read_csv(path: Path, where: str) -> Table:
    """A CSV table with a header row."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep=None, engine="python")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: cannot parse the CSV file: {exc}") from exc
    return Table({str(c): frame[c].to_numpy() for c in frame.columns})


def read_arff(path: Path, where: str) -> Table:
    """An ARFF file; nominal attributes become integer codes in declaration order."""
    import arff

    try:
        with path.open(encoding="utf-8") as f:
            data = arff.load(f, encode_nominal=True)
    except (arff.ArffException, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: cannot parse the ARFF file: {exc}") from exc
    names = [name for name, _ in data["attributes"]]
    mappings: dict[str, list[str]] = {}
    for name, kind in data["attributes"]:
        if isinstance(kind, list):
            mappings[name] = [str(v) for v in kind]
        elif str(kind).upper() not in ("NUMERIC", "REAL", "INTEGER"):
            raise DatasetError(
                f"{where}: attribute {name!r} is of type {str(kind).split()[0]}; "
                "only NUMERIC, REAL, INTEGER and nominal attributes are supported"
            )
    rows = np.array(
        [[np.nan if v is None else v for v in row] for row in data["data"]], dtype=np.float64
    ).reshape(-1, len(names))
    return Table({name: rows[:, i] for i, name in enumerate(names)}, mappings)


def read_json(path: Path, where: str) -> Table:
    """A JSON object mapping each column (or a matrix-valued key) to its values."""
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: cannot parse the JSON file: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise DatasetError(
            f"{where}: the JSON file must be an object mapping each column "
            'name to a list of values, e.g. {"x1": [1, 2], "label": [0, 1]}'
        )
    for name, values in data.items():
        if not isinstance(values, list):
            raise DatasetError(f"{where}: column {name!r} must be a list of values")
    return Table(dict(data))


def read_pickle(path: Path, where: str, zipped: bool, allow: bool, max_bytes: int) -> Table:
    """A pandas DataFrame pickle, only where the operator allowed pickles."""
    if not allow:
        raise DatasetError(
            f"{where}: pandas pickle files are disabled on this server because "
            "loading a pickle can run code; convert the DataFrame to CSV "
            "(df.to_csv) or NPZ, or ask the operator to enable allow_pickle"
        )
    import pandas as pd

    if zipped:
        check_zip(path, where, max_bytes)
    frame = pd.read_pickle(path, compression="zip" if zipped else None)
    if not isinstance(frame, pd.DataFrame):
        raise DatasetError(f"{where}: the pickle holds a {type(frame).__name__}, not a DataFrame")
    return Table({str(c): frame[c].to_numpy() for c in frame.columns})
