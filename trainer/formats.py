"""Readers for the dataset formats of appendix C: NPZ, CSV, ARFF, JSON, pandas pickle.

NPZ gives arrays; every other reader gives a table of columns, text left as text (None where
a value is missing) with the category order a file declares (ARFF nominal, pandas
Categorical). `trainer.datasets` turns both into checked feature and label arrays.
"""

from __future__ import annotations

import csv
import io
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
HEADER_SNIFF_BYTES = 65536  # a CSV header of 784 pixel names is longer than 4 KiB
NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float: what a feature or label can be
LOADABLE_KINDS = NUMERIC_KINDS + "U"  # unicode arrays hold no code: labels may be class names
NO_VALUE = ("", "?")  # empty and Weka's "?": missing, neither header nor data evidence
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
ARFF_ATTRIBUTE = re.compile(r"^\s*@attribute\s+('[^']*'|\"[^\"]*\"|\S+)\s+(\S+)", re.IGNORECASE)


@dataclass
class Table:
    """Named columns of one file, the category order it declares, and what the reader did."""

    columns: dict[str, Any]
    mappings: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    default_label: str | None = None  # the label when the configuration names none


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
    if dtype.kind not in LOADABLE_KINDS:
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


def read_csv(path: Path, where: str, label: str | None = None) -> Table:
    """A CSV table, with a header row or without one (then its columns are numbered 0..n-1)."""
    import pandas as pd

    sep = _delimiter(path)
    header = _has_header(path, sep, label)
    try:
        # compression=None: a .gz/.bz2/.xz name must not inflate past the size check
        frame = pd.read_csv(
            path,
            sep=sep,
            compression=None,
            header=0 if header else None,
            skipinitialspace=True,
            na_values=["?"],
        )
    except (ValueError, csv.Error, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"{where}: cannot parse the CSV file ({exc}); upload a plain UTF-8 CSV "
            "with one sample per row"
        ) from exc
    notes = [] if header else [_numbered_note(where, len(frame.columns))]
    frame, dropped = _drop_index(frame, where)
    columns, declared = frame_columns(frame)
    return Table(columns, declared, notes + dropped)


def _numbered_note(where: str, count: int) -> str:
    return (
        f"{where}: the CSV file has no header row (its first row is data like the rest), "
        f"so its columns are numbered 0 to {count - 1}"
    )


def _delimiter(path: Path) -> str:
    """Comma, semicolon, tab or pipe, sniffed from the start; a one-column file is a comma."""
    with path.open("rb") as f:
        sample = f.read(TEXT_SNIFF_BYTES).decode("utf-8", "replace")
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _has_header(path: Path, sep: str, label: str | None) -> bool:
    """Whether the first row names the columns: text above a number, not data like the rest."""
    with path.open("rb") as f:
        sample = f.read(HEADER_SNIFF_BYTES).decode("utf-8", "replace").lstrip("\ufeff")
    try:
        rows = [r for r in csv.reader(io.StringIO(sample), delimiter=sep) if r][:2]
    except csv.Error:
        return True  # not text at all: pandas refuses it with the usual message
    if not rows:
        return True
    first = [f.strip() for f in rows[0]]
    if label and not label.lstrip("-").isdigit() and label in first:
        return True
    names = first[1:] if first[0] == "" else first  # "" names the index DataFrame.to_csv writes
    if all(is_number(f) for f in names):
        # DataFrame.to_csv writes the column names 0, 1, ... of a frame made from an array
        return names == [str(i) for i in range(len(names))]
    if len(rows) < 2:
        return True
    second = [f.strip() for f in rows[1]]
    numbers = [is_number(f) for f in second]
    text_over_number = any(
        n and a not in NO_VALUE and not is_number(a) for a, n in zip(first, numbers, strict=False)
    )
    return text_over_number or not any(numbers)


def is_number(text: str) -> bool:
    """Whether a piece of text reads as a number ("1", "2.5e3", "nan", "inf")."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _drop_index(frame: Any, where: str) -> tuple[Any, list[str]]:
    """Drop the row numbers `DataFrame.to_csv` writes as an unnamed first column."""
    import pandas as pd

    first = frame.columns[0] if len(frame.columns) > 1 else None
    if not (isinstance(first, str) and first.startswith("Unnamed: 0")):
        return frame, []
    column = frame[first]
    if not pd.api.types.is_integer_dtype(column.dtype) or not column.is_unique:
        return frame, []
    return frame.drop(columns=first), [
        f"{where}: the unnamed first column holds the row numbers DataFrame.to_csv writes "
        "and is not used as a feature (save with index=False to leave it out)"
    ]


def frame_columns(frame: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A DataFrame's columns as arrays (text with None where missing); categorical orders."""
    import pandas as pd

    columns: dict[str, Any] = {}
    declared: dict[str, list[str]] = {}
    for name in frame.columns:
        series, key = frame[name], str(name)
        if isinstance(series.dtype, pd.CategoricalDtype):
            declared[key] = [str(c) for c in series.cat.categories]
            values = series.astype(object)
            columns[key] = np.array([None if pd.isna(v) else str(v) for v in values], object)
        elif pd.api.types.is_numeric_dtype(series.dtype):
            plain = isinstance(series.dtype, np.dtype)  # keeps uint8, which is scaled later
            columns[key] = (
                series.to_numpy() if plain else series.to_numpy(np.float64, na_value=np.nan)
            )
        else:
            columns[key] = series.astype(object).where(series.notna(), None).to_numpy()
    return columns, declared


def read_arff(path: Path, where: str) -> Table:
    """An ARFF file: nominal attributes stay text in their declared order, the class is last."""
    import arff

    _check_arff_types(path, where)
    try:
        with path.open(encoding="utf-8") as f:
            data = arff.load(f)
    except (arff.ArffException, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: cannot parse the ARFF file: {exc}") from exc
    rows, columns, declared = data["data"], {}, {}
    for i, (name, kind) in enumerate(data["attributes"]):
        values = [row[i] for row in rows]
        if isinstance(kind, list):
            declared[name] = [str(v) for v in kind]
            columns[name] = np.array(values, dtype=object)  # None where the file has "?"
        elif str(kind).upper() in ("NUMERIC", "REAL", "INTEGER"):
            columns[name] = np.array([np.nan if v is None else v for v in values], np.float64)
        else:
            raise DatasetError(
                f"{where}: attribute {name!r} is of type {str(kind).split()[0]}; "
                "only NUMERIC, REAL, INTEGER and nominal attributes are supported"
            )
    # Weka's convention: without a class index the class is the last attribute
    return Table(columns, declared, default_label=list(columns)[-1] if columns else None)


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
    """Columns as lists, as {row: value} maps (pandas' default), or a list of records."""
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: cannot parse the JSON file: {exc}") from exc
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return Table(_gather(data))  # DataFrame.to_json(orient="records")
    if not isinstance(data, dict) or not data:
        raise DatasetError(
            f"{where}: the JSON file must be an object mapping each column "
            'name to a list of values, e.g. {"x1": [1, 2], "label": [0, 1]}, or a list '
            'of records, e.g. [{"x1": 1, "label": 0}, {"x1": 2, "label": 1}]'
        )
    if all(isinstance(v, dict) for v in data.values()):
        # DataFrame.to_json(orient="columns"): {column: {row: value}}
        rows = list(dict.fromkeys(k for column in data.values() for k in column))
        return Table({str(n): [c.get(k) for k in rows] for n, c in data.items()})
    for name, values in data.items():
        if not isinstance(values, list):
            raise DatasetError(f"{where}: column {name!r} must be a list of values")
    return Table(dict(data))


def _gather(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Columns of a list of records; a key some records lack is missing (None) there."""
    names = dict.fromkeys(k for record in records for k in record)
    return {str(n): [record.get(n) for record in records] for n in names}


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
    return Table(*frame_columns(frame))
