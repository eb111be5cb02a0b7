"""A ready-made experiment: scikit-learn's digits as NPZ files and the seed's MLP (appendix D)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from schemas.experiment import ExperimentConfig, expand
from schemas.run import RUN_SPEC_FILE, DatasetPaths, RunSpec

DEMO_NAME = "digits-demo"


def _dense(name: str, units: int, activation: str) -> dict[str, Any]:
    init = {
        "module": "keras.initializers",
        "class_name": "GlorotUniform",
        "config": {"seed": None},
        "registered_name": None,
    }
    zeros: dict[str, Any] = {
        "module": "keras.initializers",
        "class_name": "Zeros",
        "config": {},
        "registered_name": None,
    }
    return {
        "module": "keras.layers",
        "class_name": "Dense",
        "registered_name": None,
        "config": {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "units": units,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": init,
            "bias_initializer": zeros,
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        },
    }


def demo_model() -> dict[str, Any]:
    """Keras 3 JSON of InputLayer 8x8 -> Flatten -> Dense 128 relu -> Dense 10 (logits)."""
    layers = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "registered_name": None,
            "config": {"batch_shape": [None, 8, 8], "dtype": "float32", "name": "digits"},
        },
        {
            "module": "keras.layers",
            "class_name": "Flatten",
            "registered_name": None,
            "config": {
                "name": "flatten",
                "trainable": True,
                "dtype": "float32",
                "data_format": "channels_last",
            },
        },
        _dense("hidden", 128, "relu"),
        _dense("logits", 10, "linear"),
    ]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "registered_name": None,
        "config": {"name": "digits_mlp", "trainable": True, "layers": layers},
    }


def demo_config(paths: dict[str, str], total_epochs: int = 30) -> dict[str, Any]:
    """Appendix-A configuration of the demo experiment (validated before it is returned)."""
    config = {
        "name": DEMO_NAME,
        "dataset_train": paths["train"],
        "dataset_val": paths["val"],
        "dataset_test": paths["test"],
        "batch_size": 32,
        "total_epochs": total_epochs,
        "epoch_period": 1,
        "optimizers": [{"optimizer": "Adam", "conf": {}}],
        "loss_function": [
            {"loss_function": "SparseCategoricalCrossentropy", "conf": {"from_logits": True}}
        ],
        "learning_rates": [0.001],
        "tags": ["demo"],
    }
    for role in ("train", "val", "test"):
        config[f"{role}_feature_name"], config[f"{role}_label_name"] = f"x_{role}", f"y_{role}"
    ExperimentConfig.model_validate(config)
    return config


def write_demo(
    directory: str | Path, total_epochs: int = 30
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Write digits train/val/test NPZ files; return (config, model JSON, dataset paths)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_fit, x_test, y_fit, y_test = train_test_split(
        x, y, test_size=0.15, random_state=0, stratify=y
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_fit, y_fit, test_size=0.15, random_state=0, stratify=y_fit
    )
    parts = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
    paths: dict[str, str] = {}
    for role, (features, labels) in parts.items():
        path = out / f"digits_{role}.npz"
        np.savez(path, **{f"x_{role}": features, f"y_{role}": labels})
        paths[role] = str(path.resolve())
    return demo_config(paths, total_epochs), demo_model(), paths


def demo_run_spec(
    directory: str | Path, bootstrap: str | None = None, total_epochs: int = 30
) -> Path:
    """Write the demo and a RUN_DIR/run.json for its single simulation; return the run dir."""
    config_dict, model, paths = write_demo(directory, total_epochs)
    config = ExperimentConfig.model_validate(config_dict)
    experiment_id = uuid.uuid4()
    plan = expand(experiment_id, config)[0]
    spec = RunSpec(
        simulation_id=plan.simulation_id,
        experiment_id=experiment_id,
        name=plan.name,
        config=config,
        plan=plan,
        model=model,
        datasets=DatasetPaths(**paths),
        kafka_bootstrap=bootstrap or os.environ.get("NNT_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
    )
    run_dir = Path(directory)
    (run_dir / RUN_SPEC_FILE).write_text(spec.model_dump_json(indent=2))
    return run_dir
