"""The create form's POST → appendix-A dict, and validation paths → form fields (no Django)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from schemas.experiment import ExperimentConfig, error_fields, grid_size
from web.experiments import form


class Post(dict):
    """A dict of lists that answers like Django's QueryDict."""

    def get(self, key: str, default: Any = None) -> Any:
        values = super().get(key)
        return values[-1] if values else default

    def getlist(self, key: str) -> list[Any]:
        return list(super().get(key, []))


def _post(**fields: Any) -> Post:
    return Post({k: v if isinstance(v, list) else [v] for k, v in fields.items()})


def test_it_builds_a_valid_appendix_a_config() -> None:
    parsed = form.from_form(
        _post(
            name="grid",
            dataset_train_url="https://x.org/t.npz",
            batch_size="8",
            total_epochs="3",
            optimizer=["Adam", "SGD", ""],
            optimizer_conf=['{"beta_1": 0.8}', "", ""],
            loss_function="Huber",
            loss_conf="",
            learning_rate=["0.1", " ", "0.01"],
            k_fold_validation="2",
            k_fold_tag="cv",
            tags="a, b,,a",
            metric="AUC",
            collect_weights="on",
            collect_layers="d1,\nd2",
            collect_dtype="float16",
            label_column="y",
            val_feature_name="xv",
        )
    )
    assert parsed.errors == {}
    config = ExperimentConfig.model_validate(parsed.raw)
    assert grid_size(config) == 2 * 1 * 2 * 2
    assert config.optimizers[0].conf == {"beta_1": 0.8} and len(parsed.rows["optimizers"]) == 2
    assert config.tags == ["a", "b"] and config.all_tags() == ["a", "b", "cv"]
    assert (
        config.collect.weights
        and not config.collect.biases
        and config.collect.layers == ["d1", "d2"]
    )
    assert config.batch_size == 8 and config.label_column == "y" and config.val_feature_name == "xv"


def test_it_leaves_blank_optional_fields_to_the_schema_defaults() -> None:
    parsed = form.from_form(
        _post(
            optimizer="Adam",
            loss_function="Huber",
            learning_rate="0.1",
            dataset_train_url="https://x.org/t.npz",
        )
    )
    config = ExperimentConfig.model_validate(parsed.raw)
    assert config.batch_size == 32 and config.name == "experiment" and config.dataset_test is None


def test_it_names_bad_options_json_by_row() -> None:
    parsed = form.from_form(
        _post(
            optimizer=["Adam", "SGD"], optimizer_conf=["", "[1]"], metric="AUC", metric_conf="{oops"
        )
    )
    assert set(parsed.errors) == {"optimizers.1.conf", "extra_metrics.0.conf"}
    assert "JSON object" in parsed.errors["optimizers.1.conf"]


def test_it_maps_validation_paths_to_form_fields() -> None:
    try:
        ExperimentConfig.model_validate(
            {
                "batch_size": 0,
                "learning_rates": ["x"],
                "loss_function": [{"loss_function": ""}],
                "collect": {"dtype": "int8"},
            }
        )
    except ValidationError as exc:
        shown = form.form_errors(error_fields(exc))
    assert set(shown) == {
        "dataset_train",
        "batch_size",
        "learning_rates.0",
        "loss_functions.0",
        "collect_dtype",
    }
    assert shown["dataset_train"] == "Upload a training dataset or give its URL."


def test_it_puts_cross_field_errors_on_the_first_named_field() -> None:
    shown = form.form_errors({"__all__": "Value error, epoch_period must not exceed total_epochs"})
    assert shown == {"epoch_period": "epoch_period must not exceed total_epochs"}


def test_it_lists_json_mode_errors_under_config() -> None:
    shown = form.form_errors({"batch_size": "too small", "model": "not a model"}, json_mode=True)
    assert shown["config"] == "batch_size: Too small" and shown["model"] == "Not a model"


GRID = {
    "dataset_train_url": "https://x.org/t.npz",
    "optimizer": "SGD",
    "loss_function": "Huber",
    "learning_rate": ["0.05", "10"],
}


def test_it_turns_the_early_stop_checkbox_and_patience_into_the_config() -> None:
    on = form.from_form(_post(**GRID, early_stop="on", early_stop_patience="3"))
    config = ExperimentConfig.model_validate(on.raw)
    assert config.early_stop.enabled and config.early_stop.patience == 3
    assert config.early_stop.on == ["nonfinite", "divergence", "dead_network"]
    off = form.from_form(_post(**GRID, early_stop_patience="x"))
    assert not ExperimentConfig.model_validate(off.raw).early_stop.enabled  # patience unused


def test_it_puts_a_bad_patience_beside_its_field() -> None:
    parsed = form.from_form(_post(**GRID, early_stop="on", early_stop_patience="0"))
    try:
        ExperimentConfig.model_validate(parsed.raw)
    except ValidationError as exc:
        shown = form.form_errors(error_fields(exc))
    assert "greater than or equal to 1" in shown["early_stop_patience"]
