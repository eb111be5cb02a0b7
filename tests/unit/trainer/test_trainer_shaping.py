"""Data meets the model: shapes, label ranges, K-fold and validation splits."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from schemas.experiment import ExperimentConfig, expand
from trainer.datasets import Split
from trainer.errors import DatasetError
from trainer.shaping import fit_to_model, fold_indices, holdout

pytestmark = pytest.mark.unit


def split(x: np.ndarray, y: np.ndarray) -> Split:
    return Split(x.astype(np.float64), y.astype(np.float64))


def test_it_reshapes_flat_features_to_the_model_input() -> None:
    out = fit_to_model(
        split(np.zeros((2, 64)), np.array([1, 2])),
        (None, 8, 8),
        (None, 10),
        "SparseCategoricalCrossentropy",
        "dataset_train",
    )
    assert out.x.shape == (2, 8, 8) and out.x.dtype == np.float32 and out.y.dtype == np.int64


def test_it_names_the_shape_mismatch() -> None:
    with pytest.raises(DatasetError, match=r"dataset_val: each sample has shape \(5,\).*\(8, 8\)"):
        fit_to_model(
            split(np.zeros((2, 5)), np.array([1, 2])),
            (None, 8, 8),
            (None, 10),
            "SparseCategoricalCrossentropy",
            "dataset_val",
        )


def test_it_refuses_labels_outside_the_model_outputs() -> None:
    with pytest.raises(DatasetError, match="label 10 is outside 0..9"):
        fit_to_model(
            split(np.zeros((2, 4)), np.array([1, 10])),
            (None, 4),
            (None, 10),
            "SparseCategoricalCrossentropy",
            "dataset_train",
        )


def test_it_one_hot_encodes_class_indices_for_categorical_crossentropy() -> None:
    out = fit_to_model(
        split(np.zeros((2, 4)), np.array([0, 2])),
        (None, 4),
        (None, 3),
        "CategoricalCrossentropy",
        "dataset_train",
    )
    assert out.y.tolist() == [[1, 0, 0], [0, 0, 1]]


def test_it_keeps_the_codes_and_notes_for_the_user_when_fitting_to_the_model() -> None:
    codes, notes = {"species": ["setosa", "virginica"]}, ["dataset_train: label column ..."]
    out = fit_to_model(
        Split(np.zeros((2, 4)), np.array([0.0, 1.0]), codes, notes),
        (None, 4),
        (None, 2),
        "SparseCategoricalCrossentropy",
        "dataset_train",
    )
    assert out.mappings == codes and out.notes == notes


def test_it_gives_each_fold_its_own_id_and_disjoint_validation_folds() -> None:
    # The seed gave every fold the last fold's id, and its test set overlapped the folds.
    config = ExperimentConfig(dataset_train="t", dataset_test="s", k_fold_validation=4)
    plans = expand(uuid.uuid4(), config)
    assert len({p.simulation_id for p in plans}) == 4
    y = np.repeat(np.arange(3), 20)
    vals = [fold_indices(y, p.folds, p.fold, seed=7)[1] for p in plans]
    assert sum(len(v) for v in vals) == len(y) and len(np.unique(np.concatenate(vals))) == len(y)
    for plan, val in zip(plans, vals, strict=True):
        train, _ = fold_indices(y, plan.folds, plan.fold, seed=7)
        assert not set(train) & set(val)
        assert np.bincount(y[val].astype(int)).tolist() == [5, 5, 5]  # stratified


def test_it_splits_off_a_stratified_shuffled_validation_set() -> None:
    y = np.repeat(np.arange(2), 50)  # sorted: a tail split would hold one class only
    train, val = holdout(y, 0.2, seed=1)
    assert len(val) == 20 and np.bincount(y[val]).tolist() == [10, 10]
    assert not set(train) & set(val)


def test_it_cuts_folds_from_the_training_file_and_leaves_the_test_set_alone(tmp_path) -> None:
    from schemas.experiment import SimulationPlan
    from schemas.run import DatasetPaths, RunSpec
    from trainer.preparation import load_data
    from trainer.settings import TrainerSettings

    for role, n in (("train", 30), ("test", 7)):
        np.savez(tmp_path / f"{role}.npz", x=np.arange(n * 2.0).reshape(n, 2), y=np.arange(n) % 3)
    config = ExperimentConfig(dataset_train="t", k_fold_validation=3)
    plans = expand(uuid.uuid4(), config)
    seen: list[float] = []
    for plan in plans:
        spec = RunSpec(
            simulation_id=plan.simulation_id,
            name=plan.name,
            config=config,
            plan=SimulationPlan.model_validate(plan.model_dump()),
            model={},
            datasets=DatasetPaths(
                train=str(tmp_path / "train.npz"), test=str(tmp_path / "test.npz")
            ),
        )
        train, val, test = load_data(spec, TrainerSettings())
        assert (len(train.x), len(val.x), len(test.x)) == (20, 10, 7)
        assert not set(train.x[:, 0]) & set(val.x[:, 0])
        seen += val.x[:, 0].tolist()
    assert sorted(seen) == np.arange(0, 60, 2.0).tolist()


def test_it_cuts_validation_split_from_the_training_file(tmp_path) -> None:
    from schemas.run import DatasetPaths, RunSpec
    from trainer.preparation import load_data
    from trainer.settings import TrainerSettings

    x, y = np.arange(80.0).reshape(40, 2), np.repeat([0, 1], 20)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    config = ExperimentConfig(dataset_train="t", validation_split=0.25)
    plan = expand(uuid.uuid4(), config)[0]
    spec = RunSpec(
        simulation_id=plan.simulation_id,
        name=plan.name,
        config=config,
        plan=plan,
        model={},
        datasets=DatasetPaths(train=str(tmp_path / "train.npz")),
    )
    train, val, test = load_data(spec, TrainerSettings())
    assert (len(train.x), len(val.x), test) == (30, 10, None)
    assert np.bincount(val.y.astype(int)).tolist() == [5, 5]  # stratified
    assert sorted(train.x[:, 0].tolist() + val.x[:, 0].tolist()) == x[:, 0].tolist()
    assert (train.y == train.x[:, 0] // 40).all() and (val.y == val.x[:, 0] // 40).all()
