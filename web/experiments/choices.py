"""Suggestions the form offers (free text is allowed: the trainer resolves Keras class names)."""

from __future__ import annotations

OPTIMIZERS = (
    "Adam",
    "AdamW",
    "SGD",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "Nadam",
    "Ftrl",
    "Lion",
)
LOSSES = (
    "SparseCategoricalCrossentropy",
    "CategoricalCrossentropy",
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "Huber",
    "LogCosh",
    "KLDivergence",
    "Poisson",
    "Hinge",
    "SquaredHinge",
    "CosineSimilarity",
)
METRICS = (
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "Precision",
    "Recall",
    "F1Score",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "RootMeanSquaredError",
)

# Shown in JSON mode as a starting point: every appendix-A field.
EXAMPLE = {
    "name": "mnist-grid",
    "dataset_train": "https://example.org/mnist_train.npz",
    "dataset_test": "https://example.org/mnist_test.npz",
    "dataset_val": None,
    "batch_size": 64,
    "total_epochs": 20,
    "epoch_period": 2,
    "optimizers": [
        {"optimizer": "Adam", "conf": {"beta_1": 0.9}},
        {"optimizer": "SGD", "conf": {"momentum": 0.9}},
    ],
    "loss_functions": [{"loss_function": "SparseCategoricalCrossentropy", "conf": {}}],
    "learning_rates": [0.001, 0.0001],
    "k_fold_validation": 1,
    "k_fold_tag": None,
    "extra_metrics": [{"metric": "SparseCategoricalAccuracy", "conf": {}}],
    "tags": ["mnist"],
    "train_feature_name": "x_train",
    "train_label_name": "y_train",
    "test_feature_name": "x_test",
    "test_label_name": "y_test",
    "val_feature_name": None,
    "val_label_name": None,
    "label_column": None,
    "collect": {
        "weights": True,
        "biases": True,
        "gradients": True,
        "activations": True,
        "layers": None,
        "full_tensor_period": 1,
        "dtype": "float32",
    },
}
