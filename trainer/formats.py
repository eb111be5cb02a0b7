"""Readers for the dataset formats of appendix C: NPZ, CSV, ARFF, JSON, pandas pickle.

Each reader returns either arrays (NPZ, JSON with a matrix key) or a table of columns;
`trainer.datasets` turns both into checked feature and label arrays.
"""

from __future__ import annotations

import csv
import json
import math
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import DatasetError

TEXT_SNIFF_BYTES = 4096
NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float: what a feature or label can be
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
ARFF_ATTRIBUTE = re.compile(r"^\s*@attribute\s+('[^']*'|\"[^\"]*\"|\S+)\s+(\S+)", re.IGNORECASE)


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
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except ZIP_ERRORS:
            return "npz"  # the NPZ reader refuses it with a message naming the file
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
    except ZIP_ERRORS as exc:
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
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                with zf.open(info) as f:
                    _check_npy_header(f, info, where, max_bytes)
        # allow_pickle stays False: object arrays would unpickle code
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, *ZIP_ERRORS) as exc:
        raise DatasetError(
            f"{where}: cannot read the NPZ file ({exc}); save it again with numpy.savez"
        ) from exc


def _check_npy_header(f: Any, info: zipfile.ZipInfo, where: str, max_bytes: int) -> None:
    """Shape and dtype from the .npy header, refused before numpy allocates anything."""
    name = info.filename
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
    if dtype.kind not in NUMERIC_KINDS:
        raise DatasetError(
            f"{where}: array {name} has dtype {dtype}; features and labels must be "
            "real numbers (bool, int or float)"
        )
    if not shape:
        raise DatasetError(f"{where}: array {name} is a single value; save one row per sample")
    size = math.prod(shape) * dtype.itemsize  # Python ints: no overflow to a small number
    if size > max_bytes:
        raise DatasetError(
            f"{where}: array {name} of shape {shape} needs {size} bytes, over the limit "
            f"of {max_bytes}; use a smaller dataset or ask the operator to raise "
            "NNT_TRAINER_MAX_DATASET_BYTES"
        )
    if size > info.file_size:
        raise DatasetError(
            f"{where}: array {name} declares shape {shape} ({size} bytes) but holds only "
            f"{info.file_size} bytes; the file is truncated or forged, save it again"
        )


def read_csv(path: Path, where: str) -> Table:
    """A CSV table with a header row."""
    import pandas as pd

    try:
        # compression=None: a .gz/.bz2/.xz name must not inflate past the size check
        frame = pd.read_csv(path, sep=_delimiter(path), compression=None)
    except (ValueError, csv.Error, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"{where}: cannot parse the CSV file ({exc}); upload a plain UTF-8 CSV "
            "with a header row"
        ) from exc
    return Table({str(c): frame[c].to_numpy() for c in frame.columns})


def _delimiter(path: Path) -> str:
    """Comma, semicolon, tab or pipe, sniffed from the start; a one-column file is a comma."""
    with path.open("rb") as f:
        sample = f.read(TEXT_SNIFF_BYTES).decode("utf-8", "replace")
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_arff(path: Path, where: str) -> Table:
    """An ARFF file; nominal attributes become integer codes in declaration order."""
    import arff

    _check_arff_types(path, where)
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


def _check_arff_types(path: Path, where: str) -> None:
    """Name STRING, DATE and relational attributes, which liac-arff reports only by line."""
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.lstrip().lower().startswith("@data"):
                return
            match = ARFF_ATTRIBUTE.match(line)
            if match and match.group(2).lower() in ("string", "date", "relational"):
                raise DatasetError(
                    f"{where}: attribute {match.group(1).strip(chr(39) + chr(34))!r} is of "
                    f"type {match.group(2).upper()}; only NUMERIC, REAL, INTEGER and "
                    "nominal attributes are supported: encode it as numbers or drop it"
                )


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
