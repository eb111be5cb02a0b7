"""The appendix-A configuration: option strings typed at any depth, contradictions refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.experiment import ExperimentConfig, error_fields

pytestmark = pytest.mark.unit


def test_it_types_option_strings_nested_in_lists() -> None:
    config = ExperimentConfig.model_validate(
        {
            "dataset_train": "stored:a",
            "optimizers": [{"optimizer": "SGD", "conf": {"momentum": "0.9"}}],
            "extra_metrics": [
                {"metric": "AUC", "conf": {"thresholds": ["0.25", "0.5", "0.75"]}},
                {"metric": "Precision", "conf": {"top_k": "2", "thresholds": [["true", "1e-3"]]}},
            ],
        }
    )
    assert config.extra_metrics[0].conf == {"thresholds": [0.25, 0.5, 0.75]}
    assert config.extra_metrics[1].conf == {"top_k": 2, "thresholds": [[True, 0.001]]}
    assert config.optimizers[0].conf == {"momentum": 0.9}


def test_it_keeps_option_strings_that_are_not_numbers_or_booleans() -> None:
    config = ExperimentConfig.model_validate(
        {
            "dataset_train": "stored:a",
            "loss_function": [{"loss_function": "Huber", "conf": {"reduction": "sum"}}],
            "extra_metrics": [{"metric": "F1Score", "conf": {"average": ["macro", "weighted"]}}],
        }
    )
    assert config.loss_functions[0].conf == {"reduction": "sum"}
    assert config.extra_metrics[0].conf == {"average": ["macro", "weighted"]}


def test_it_refuses_validation_split_with_a_validation_file() -> None:
    with pytest.raises(ValidationError) as info:
        ExperimentConfig.model_validate(
            {"dataset_train": "stored:t", "dataset_val": "stored:v", "validation_split": 0.2}
        )
    fields = error_fields(info.value)
    assert list(fields) == ["validation_split"]
    assert "cannot be combined with dataset_val" in fields["validation_split"]
    assert "remove validation_split, or remove dataset_val" in fields["validation_split"]


def test_it_accepts_validation_split_or_a_validation_file_alone() -> None:
    assert ExperimentConfig(dataset_train="t", validation_split=0.2).validation_split == 0.2
    assert ExperimentConfig(dataset_train="t", dataset_val="v").validation_split is None
