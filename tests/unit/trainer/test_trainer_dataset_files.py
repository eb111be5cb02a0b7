"""Datasets as people have them, each file written by its own library, and what the user is told."""

from __future__ import annotations

import json
from pathlib import Path

import arff
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, load_iris

from schemas.experiment import ExperimentConfig
from trainer.datasets import load_split
from trainer.errors import DatasetError

pytestmark = pytest.mark.unit

SPECIES = "dataset_train: label column 'species' encoded as setosa=0, versicolor=1, virginica=2"


def config(**fields: object) -> ExperimentConfig:
    return ExperimentConfig(dataset_train="train", **fields)


def iris() -> pd.DataFrame:
    """The iris table with the species named, as Kaggle and seaborn ship it."""
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame["species"] = data.target_names[data.target]
    return frame


def weather() -> pd.DataFrame:
    """A small table with a text feature, a text label and a missing value of each kind."""
    return pd.DataFrame(
        {
            "outlook": ["sunny", "rainy", None, "overcast", "sunny", "rainy"],
            "temperature": [30.0, 18.0, 21.0, 24.0, 27.0, 15.0],
            "play": ["no", "yes", "yes", "yes", "no", "yes"],
        }
    )


def test_it_encodes_csv_class_names_and_tells_the_user_the_codes(tmp_path: Path) -> None:
    path = tmp_path / "iris.csv"
    iris().to_csv(path, index=False)
    split = load_split(path, "train", config(label_column="species"))
    assert split.x.shape == (150, 4) and split.y[[0, 50, 100]].tolist() == [0, 1, 2]
    assert split.mappings == {"species": ["setosa", "versicolor", "virginica"]}
    assert SPECIES in split.notes
    assert (
        "dataset_train: 150 samples of 4 features, values 0.1–7.9, used as they are (not scaled)"
        in split.notes
    )


def test_it_encodes_a_text_feature_column_as_one_code_per_category(tmp_path: Path) -> None:
    path = tmp_path / "weather.csv"
    weather().dropna().to_csv(path, index=False)
    split = load_split(path, "train", config(label_column="play"))
    assert split.x[:, 0].tolist() == [2, 1, 0, 2, 1]  # overcast=0, rainy=1, sunny=2
    assert split.x.shape == (5, 2)
    assert (
        "dataset_train: feature column 'outlook' encoded as overcast=0, rainy=1, sunny=2"
        in split.notes
    )
    assert split.mappings["play"] == ["no", "yes"]


def test_it_gives_missing_text_features_their_own_code(tmp_path: Path) -> None:
    path = tmp_path / "weather.csv"
    weather().to_csv(path, index=False)
    split = load_split(path, "train", config(label_column="play"))
    assert split.x[:, 0].tolist() == [2, 1, 3, 0, 2, 1]
    assert (
        "dataset_train: 1 missing value in 'outlook' read as one more category, '?', code 3"
        in split.notes
    )
    assert split.mappings["outlook"] == ["overcast", "rainy", "sunny", "?"]


def test_it_refuses_missing_labels_and_missing_numbers_by_column(tmp_path: Path) -> None:
    path = tmp_path / "weather.csv"
    frame = weather()
    frame.loc[[1, 4], "play"] = None
    frame.to_csv(path, index=False)
    with pytest.raises(
        DatasetError,
        match=r"^dataset_train: label column 'play' has 2 missing values, first at row 1; give every sample its class or drop those rows$",
    ):
        load_split(path, "train", config(label_column="play"))
    frame = weather().dropna()
    frame.loc[[0, 3, 5], "temperature"] = np.nan
    frame.to_csv(path, index=False)
    with pytest.raises(
        DatasetError,
        match=r"^dataset_train: column 'temperature' has 3 missing \(NaN\) values, first at row 0; fill or drop them",
    ):
        load_split(path, "train", config(label_column="play"))


def test_it_refuses_a_text_feature_that_is_names_not_categories(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    pd.DataFrame(
        {"name": [f"person {i}" for i in range(150)], "age": range(150), "label": [0, 1] * 75}
    ).to_csv(path, index=False)
    with pytest.raises(
        DatasetError,
        match="text column 'name' has 150 different values .* drop the column or turn it into numbers",
    ):
        load_split(path, "train", config())


def test_it_does_not_use_the_row_numbers_to_csv_writes_as_a_feature(tmp_path: Path) -> None:
    path = tmp_path / "iris.csv"
    iris().sample(frac=1, random_state=0).to_csv(path)  # index=True, the pandas default
    split = load_split(path, "train", config(label_column="species"))
    assert split.x.shape == (150, 4)
    assert (
        "dataset_train: the unnamed first column holds the row numbers DataFrame.to_csv writes and is not used as a feature (save with index=False to leave it out)"
        in split.notes
    )


def test_it_reads_a_csv_without_header_with_the_last_column_as_label(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    pd.DataFrame([[0.5, 1.5, 0], [2.5, 3.5, 1], [4.5, 5.5, 1]]).to_csv(
        path, header=False, index=False
    )
    split = load_split(path, "train", config())
    assert split.x.tolist() == [[0.5, 1.5], [2.5, 3.5], [4.5, 5.5]] and split.y.tolist() == [
        0,
        1,
        1,
    ]
    assert split.notes[:2] == [
        "dataset_train: the CSV file has no header row (its first row is data like the rest), so its columns are numbered 0 to 2",
        "dataset_train: no label column is set, so the last column, '2', is the label (set label_column or train_label_name to choose another)",
    ]
    first = load_split(path, "train", config(label_column="0"))
    assert first.y.tolist() == [0.5, 2.5, 4.5] and first.x.tolist() == [
        [1.5, 0],
        [3.5, 1],
        [5.5, 1],
    ]


def test_it_reads_the_uci_iris_file_without_header_and_with_class_names(tmp_path: Path) -> None:
    path = tmp_path / "iris.data"
    iris().to_csv(path, header=False, index=False)
    split = load_split(path, "train", config())
    assert split.x.shape == (150, 4) and split.mappings == {
        "4": ["setosa", "versicolor", "virginica"]
    }


def test_it_takes_the_numbered_header_of_a_frame_made_from_an_array_as_names(
    tmp_path: Path,
) -> None:
    path = tmp_path / "array.csv"
    pd.DataFrame(np.array([[5.0, 6.0, 1.0], [7.0, 8.0, 0.0]])).to_csv(
        path, index=False
    )  # header 0,1,2
    split = load_split(path, "train", config())
    assert split.x.tolist() == [[5, 6], [7, 8]] and split.y.tolist() == [1, 0]


def test_it_says_headerless_columns_are_numbered_when_the_label_is_a_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "numbers.csv"
    pd.DataFrame([[1, 2, 0], [3, 4, 1]]).to_csv(path, header=False, index=False)
    with pytest.raises(
        DatasetError,
        match=r"'species' is not a column; set label_column .* 0, 1, 2 \(the columns have no names, only numbers\)$",
    ):
        load_split(path, "train", config(label_column="species"))


def write_arff(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w") as f:
        arff.dump(
            {
                "relation": "weather",
                "attributes": [
                    ("outlook", ["sunny", "overcast", "rainy"]),
                    ("temperature", "REAL"),
                    ("play", ["yes", "no"]),
                ],
                "data": rows,
            },
            f,
        )
    return path


def test_it_reads_arff_nominal_features_and_class_with_weka_defaults(tmp_path: Path) -> None:
    path = write_arff(
        tmp_path / "weather.arff",
        [["sunny", 30.0, "no"], [None, 21.0, "yes"], ["rainy", 15.0, "yes"]],
    )
    split = load_split(path, "train", config())
    assert split.y.tolist() == [1, 0, 0] and split.x.tolist() == [[0, 30], [3, 21], [2, 15]]
    assert split.notes[:4] == [
        "dataset_train: no label column is set, so the last column, 'play', is the label (set label_column or train_label_name to choose another)",
        "dataset_train: label column 'play' encoded as yes=0, no=1",
        "dataset_train: feature column 'outlook' encoded as sunny=0, overcast=1, rainy=2",
        "dataset_train: 1 missing value in 'outlook' read as one more category, '?', code 3",
    ]


def test_it_refuses_arff_missing_numbers_and_classes_by_column(tmp_path: Path) -> None:
    path = write_arff(tmp_path / "weather.arff", [["sunny", None, "no"], ["rainy", 15.0, "yes"]])
    with pytest.raises(
        DatasetError,
        match=r"column 'temperature' has 1 missing \(NaN\) values, first at row 0; fill or drop",
    ):
        load_split(path, "train", config())
    path = write_arff(tmp_path / "weather.arff", [["sunny", 30.0, "no"], ["rainy", 15.0, None]])
    with pytest.raises(
        DatasetError, match="label column 'play' has 1 missing value, first at row 1"
    ):
        load_split(path, "train", config())


@pytest.mark.parametrize("orient", ["columns", "records"])
def test_it_reads_pandas_json(tmp_path: Path, orient: str) -> None:
    path = tmp_path / "iris.json"
    iris().to_json(path, orient=orient)
    split = load_split(path, "train", config(label_column="species"))
    assert (
        split.x.shape == (150, 4)
        and split.y[[0, 149]].tolist() == [0, 2]
        and SPECIES in split.notes
    )


def test_it_reads_json_of_a_dict_of_lists(tmp_path: Path) -> None:
    path = tmp_path / "iris.json"
    path.write_text(json.dumps(iris().to_dict(orient="list")))
    split = load_split(path, "train", config(label_column="species"))
    assert split.x[0].tolist() == [5.1, 3.5, 1.4, 0.2] and SPECIES in split.notes


@pytest.mark.parametrize("name", ["iris.pkl", "iris.zip"])
def test_it_reads_pandas_pickles_with_categories_only_where_allowed(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    frame = iris()
    frame["species"] = pd.Categorical(
        frame["species"], categories=["virginica", "versicolor", "setosa"]
    )
    frame.to_pickle(path)
    with pytest.raises(DatasetError, match="pickle files are disabled"):
        load_split(path, "train", config(label_column="species"))
    split = load_split(path, "train", config(label_column="species"), allow_pickle=True)
    assert split.y[[0, 50, 100]].tolist() == [2, 1, 0]  # the order the Categorical declares
    assert (
        "dataset_train: label column 'species' encoded as virginica=0, versicolor=1, setosa=2"
        in split.notes
    )


def test_it_picks_keras_style_npz_keys_for_each_role(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=np.zeros((4, 2)),
        y_train=np.arange(4),
        x_test=np.ones((2, 2)),
        y_test=np.arange(2),
    )
    assert load_split(path, "train", config()).y.tolist() == [0, 1, 2, 3]
    test = load_split(path, "test", config())
    assert test.x.tolist() == [[1, 1], [1, 1]]
    assert (
        test.notes[0]
        == "dataset_test: NPZ key 'x_test' holds the features and 'y_test' the labels (set test_feature_name and test_label_name to choose others)"
    )
    with pytest.raises(
        DatasetError,
        match="cannot tell features from labels among keys x_train, y_train, x_test, y_test; set val_feature_name and val_label_name",
    ):
        load_split(path, "val", config())


def test_it_picks_images_and_labels_and_positional_arrays(tmp_path: Path) -> None:
    named, positional = tmp_path / "named.npz", tmp_path / "positional.npz"
    np.savez(named, images=np.zeros((3, 2, 2)), labels=np.array([1, 0, 1]))
    np.savez(positional, np.zeros((3, 5)), np.array([2, 0, 1]))
    assert load_split(named, "train", config()).x.shape == (3, 2, 2)
    split = load_split(positional, "train", config())
    assert split.x.shape == (3, 5) and split.y.tolist() == [2, 0, 1]
    assert "NPZ key 'arr_0' holds the features and 'arr_1' the labels" in split.notes[0]


def test_it_takes_the_array_with_fewer_values_per_sample_as_labels(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, np.array([1, 0, 1]), np.zeros((3, 5)))  # labels saved first
    split = load_split(path, "train", config())
    assert split.x.shape == (3, 5) and split.y.tolist() == [1, 0, 1]


def test_it_refuses_ambiguous_npz_keys_with_the_key_list(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, a=np.zeros((3, 2)), b=np.zeros(3), c=np.zeros(3))
    with pytest.raises(
        DatasetError,
        match=r"^dataset_train: cannot tell features from labels among keys a, b, c; set train_feature_name and train_label_name$",
    ):
        load_split(path, "train", config())


def test_it_encodes_npz_class_names(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((3, 2)), y=np.array(["dog", "cat", "dog"]))
    split = load_split(path, "train", config())
    assert (
        split.y.tolist() == [1, 0, 1]
        and "dataset_train: label column 'y' encoded as cat=0, dog=1" in split.notes
    )


def test_it_scales_uint8_images_to_0_1_and_says_so(tmp_path: Path) -> None:
    digits = load_digits()
    images = np.round(digits.images * 255 / 16).astype(np.uint8)  # 8x8 pixels 0..255
    path = tmp_path / "digits.npz"
    np.savez_compressed(path, x=images, y=digits.target)
    split = load_split(path, "train", config())
    assert split.x.min() == 0.0 and split.x.max() == 1.0 and split.x.shape == (1797, 8, 8)
    assert split.notes[-1] == (
        "dataset_train: 1797 samples of 8×8 features; the features were uint8 0–255 and are "
        "scaled to 0–1 (divided by 255); a model with its own Rescaling(1/255) layer would "
        "scale them twice"
    )


def test_it_leaves_float_pixels_and_uint8_flags_as_they_are(tmp_path: Path) -> None:
    digits = load_digits()
    path = tmp_path / "digits.npz"
    np.savez(path, x=digits.images, y=digits.target)  # float64 0..16
    split = load_split(path, "train", config())
    assert split.x.max() == 16.0
    assert (
        split.notes[-1]
        == "dataset_train: 1797 samples of 8×8 features, values 0–16, used as they are (not scaled)"
    )
    np.savez(path, x=(digits.images > 8).astype(np.uint8), y=digits.target)
    assert load_split(path, "train", config()).x.max() == 1.0


def test_it_gives_a_test_file_missing_a_class_the_training_codes(tmp_path: Path) -> None:
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    frame = iris()
    frame.to_csv(train, index=False)
    frame[frame.species != "setosa"].to_csv(test, index=False)
    codes = load_split(train, "train", config(label_column="species")).mappings
    split = load_split(test, "test", config(label_column="species"), categories=codes)
    assert sorted(set(split.y.tolist())) == [1, 2]
    frame.loc[0, "species"] = "unknown"
    frame.to_csv(test, index=False)
    with pytest.raises(
        DatasetError,
        match="column 'species' has the value 'unknown', which is not one of its classes",
    ):
        load_split(test, "test", config(label_column="species"), categories=codes)
