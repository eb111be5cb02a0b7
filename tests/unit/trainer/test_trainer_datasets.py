"""Every dataset format of appendix C loads, and every bad input names its column and fix."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from schemas.experiment import ExperimentConfig
from trainer.datasets import load_split
from trainer.errors import DatasetError

pytestmark = pytest.mark.unit


def config(**fields: object) -> ExperimentConfig:
    return ExperimentConfig(dataset_train="train", **fields)


ARFF = """% a comment
@RELATION iris
@ATTRIBUTE sepal NUMERIC
@ATTRIBUTE petal REAL
@ATTRIBUTE class {setosa,versicolor,virginica}
@DATA
5.1,1.4,virginica
4.9,1.3,setosa
6.0,4.5,versicolor
"""


def test_it_loads_npz_with_named_keys(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, pixels=np.ones((5, 2, 2)), digit=np.arange(5))
    split = load_split(path, "train", config(train_feature_name="pixels", train_label_name="digit"))
    assert split.x.shape == (5, 2, 2) and split.y.tolist() == [0, 1, 2, 3, 4]


def test_it_loads_npz_features_first_when_keys_are_not_named(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, train_feature=np.zeros((3, 4)), train_label=np.array([1, 0, 1]))
    split = load_split(path, "train", config())
    assert split.x.shape == (3, 4) and split.y.tolist() == [1, 0, 1]


def test_it_names_the_npz_keys_when_one_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, a=np.zeros((3, 4)), b=np.zeros(3))
    with pytest.raises(DatasetError, match="key 'x' not in the NPZ file.*train_feature_name"):
        load_split(path, "train", config(train_feature_name="x"))


def test_it_refuses_npz_object_arrays(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DatasetError, match="Python objects"):
        load_split(path, "train", config())


def test_it_loads_csv_with_an_odd_label_column(tmp_path: Path) -> None:
    # The seed's CSV loader always failed (a misspelt key).
    path = tmp_path / "d.csv"
    path.write_text("f1,Klasse (target),f2\n58,1,20\n12,0,60\n")
    split = load_split(path, "train", config(label_column="Klasse (target)"))
    assert split.x.tolist() == [[58, 20], [12, 60]] and split.y.tolist() == [1, 0]


def test_it_lists_the_columns_when_the_label_column_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("f1,target\n1,0\n")
    with pytest.raises(DatasetError, match="set label_column .* f1, target"):
        load_split(path, "train", config())


def test_it_names_the_column_of_a_non_numeric_value(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("f1,f2,label\n1,2,0\n3,abc,1\n")
    with pytest.raises(DatasetError, match="column 'f2' has a non-numeric value 'abc' at row 1"):
        load_split(path, "train", config())


@pytest.mark.parametrize(("cell", "what"), [("", "missing"), ("inf", "infinite")])
def test_it_names_the_column_of_nan_and_inf(tmp_path: Path, cell: str, what: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(f"f1,f2,label\n1,2,0\n3,{cell},1\n")
    with pytest.raises(DatasetError, match=f"column 'f2' has 1 {what}"):
        load_split(path, "train", config())


def test_it_loads_arff_nominal_classes_as_codes_in_declaration_order(tmp_path: Path) -> None:
    path = tmp_path / "d.arff"
    path.write_text(ARFF)
    split = load_split(path, "train", config(label_column="class"))
    assert split.y.tolist() == [2, 0, 1]
    assert split.mappings == {"class": ["setosa", "versicolor", "virginica"]}
    assert split.x.tolist() == [[5.1, 1.4], [4.9, 1.3], [6.0, 4.5]]


def test_it_reads_each_arff_file_not_always_the_validation_one(tmp_path: Path) -> None:
    # The seed's ARFF loader always read the validation file.
    train, val = tmp_path / "train.arff", tmp_path / "val.arff"
    train.write_text(ARFF)
    val.write_text(ARFF.split("@DATA")[0] + "@DATA\n1,1,setosa\n")
    cfg = config(label_column="class")
    assert len(load_split(train, "train", cfg).y) == 3
    assert len(load_split(val, "val", cfg).y) == 1


def test_it_refuses_arff_string_attributes(tmp_path: Path) -> None:
    path = tmp_path / "d.arff"
    path.write_text("@RELATION r\n@ATTRIBUTE note STRING\n@ATTRIBUTE label NUMERIC\n@DATA\n'a',1\n")
    with pytest.raises(DatasetError, match="attribute 'note' is of type STRING"):
        load_split(path, "train", config())


def test_it_loads_a_json_map_of_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(
        json.dumps({"x1": [134, 214, 3123], "x2": [1586, 245, 3123], "label": [0, 4, 5]})
    )
    split = load_split(path, "train", config())
    assert split.x.tolist() == [[134, 1586], [214, 245], [3123, 3123]] and split.y.tolist() == [
        0,
        4,
        5,
    ]


def test_it_sniffs_the_format_of_a_file_without_extension(tmp_path: Path) -> None:
    path = tmp_path / "sha256-abcdef"
    path.write_text("@relation r\n@attribute a numeric\n@attribute label {no,yes}\n@data\n1,yes\n")
    assert load_split(path, "train", config()).y.tolist() == [1]


def test_it_refuses_pickles_unless_the_operator_allows_them(tmp_path: Path) -> None:
    path = tmp_path / "d.pickle"
    pd.to_pickle(pd.DataFrame({"f1": [1.0, 2.0], "label": [0, 1]}), path)
    with pytest.raises(DatasetError, match="pickle files are disabled.*allow_pickle"):
        load_split(path, "train", config())
    assert load_split(path, "train", config(), allow_pickle=True).y.tolist() == [0, 1]


def test_it_loads_zip_compressed_pickles_when_allowed(tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    pd.to_pickle(pd.DataFrame({"f1": [1.0, 2.0], "y": [1, 0]}), path)
    split = load_split(path, "train", config(label_column="y"), allow_pickle=True)
    assert split.x.tolist() == [[1.0], [2.0]]


def test_it_refuses_archives_that_unpack_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez_compressed(path, x=np.zeros((1000, 100)), y=np.zeros(1000))
    with pytest.raises(DatasetError, match="over the limit"):
        load_split(path, "train", config(), max_bytes=10_000)
    with zipfile.ZipFile(path) as zf:
        assert sum(i.compress_size for i in zf.infolist()) < 10_000
