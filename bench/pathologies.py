"""The pathology suite: deliberately broken training set-ups and healthy ones, each labelled
with the problems it must show; measures the diagnoses' recall, precision and speed.

Every set-up trains a small Keras model on offline data (scikit-learn's bundled digits, or
synthetic sets) with the real TrackerCallback, publishing to memory; the diagnoses are read
from the epoch events it sent, exactly as the stream workers would store them.

Scoring: a broken set-up is *detected* when any problem of its `expect` is reported (the
first one names its class); a reported problem is a *false alarm* unless it is in the
set-up's `expect` or `allow` (a secondary effect the set-up is known to cause too). Healthy
set-ups expect and allow nothing: any diagnosis on them is a false alarm.
`python -m bench pathologies` runs all; tests/integration/trainer/test_pathologies.py a
subset (`ci=True`) in the test suite.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class Trial:
    """What one set-up trains: a compiled model, its data and how long."""

    model: Any
    data: Data
    epochs: int = 15
    batch_size: int = 32


@dataclass(frozen=True)
class Setup:
    """One labelled set-up."""

    name: str
    what: str
    build: Callable[[], Trial]
    expect: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    ci: bool = False

    @property
    def healthy(self) -> bool:
        return not self.expect


@dataclass
class Outcome:
    """What the diagnoses said about one set-up."""

    setup: Setup
    reported: dict[str, int] = field(default_factory=dict)  # problem -> epoch first shown
    epochs: int = 0
    wall_s: float = 0.0
    extremes: dict[str, float] = field(default_factory=dict)  # evidence's worst values

    @property
    def detected(self) -> bool:
        return any(p in self.reported for p in self.setup.expect)

    @property
    def false_alarms(self) -> list[str]:
        ok = set(self.setup.expect) | set(self.setup.allow)
        return sorted(p for p in self.reported if p not in ok)


# --- data --------------------------------------------------------------------------------


def _split(x: np.ndarray, y: np.ndarray, n_train: int, seed: int = 0) -> Data:
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def digits(scale: float = 1 / 16, n_train: int = 1400, noise: float = 0.0) -> Data:
    """scikit-learn's 8x8 digits (1,797 images, 10 classes), flattened."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data * scale).astype("float32")
    y = d.target.astype("int32")
    xt, yt, xv, yv = _split(x, y, n_train)
    if noise:
        rng = np.random.default_rng(1)
        flip = rng.random(len(yt)) < noise
        yt = np.where(flip, rng.integers(0, 10, len(yt)), yt).astype("int32")
    return xt, yt, xv, yv


def digits_images() -> Data:
    xt, yt, xv, yv = digits()
    return xt.reshape(-1, 8, 8, 1), yt, xv.reshape(-1, 8, 8, 1), yv


def shuffled_labels() -> Data:
    xt, yt, xv, yv = digits()
    rng = np.random.default_rng(2)
    return xt, rng.permutation(yt), xv, rng.permutation(yv)


def _scaled(data: Data, factor: float) -> Data:
    xt, yt, xv, yv = data
    return xt * factor, yt, xv * factor, yv


def _with_nans(data: Data) -> Data:
    xt, yt, xv, yv = data
    xt = xt.copy()
    xt[::97, 5] = np.nan  # one pixel of every 97th image
    return xt, yt, xv, yv


def moons(scale: float = 1.0) -> Data:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=1500, noise=0.2, random_state=0)
    return _split((x * scale).astype("float32"), y.astype("float32"), 1200)


def regression(standardise: bool = True, n: int = 1500, n_train: int = 1200) -> Data:
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=n, n_features=10, noise=10.0, random_state=0)
    y = (y - y.mean()) / y.std() if standardise else y * 10
    return _split(x.astype("float32"), y.astype("float32"), n_train)


# --- models ------------------------------------------------------------------------------


def mlp(
    inputs: int,
    hidden: Iterable[int],
    outputs: int,
    activation: str = "relu",
    out: str | None = "softmax",
    init: Any = "glorot_uniform",
    bias: Any = "zeros",
    extra: Callable[[], list[Any]] | None = None,
) -> Any:
    """A dense network: `hidden` widths with `activation`, then `outputs` units with `out`."""
    import keras

    layers: list[Any] = [keras.Input((inputs,))]
    for width in hidden:
        layers.append(
            keras.layers.Dense(
                width, activation=activation, kernel_initializer=init, bias_initializer=bias
            )
        )
        layers += extra() if extra else []
    layers.append(keras.layers.Dense(outputs, activation=out))
    return keras.Sequential(layers)


def compiled(model: Any, optimizer: Any, loss: Any, metrics: list[str] | None = None) -> Any:
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics or [])
    return model


def _k() -> Any:
    import keras

    return keras


def classify(
    hidden: Iterable[int] = (64, 64),
    activation: str = "relu",
    optimizer: Any = None,
    data: Data | None = None,
    epochs: int = 15,
    **kw: Any,
) -> Trial:
    """A digits classifier with sparse categorical cross-entropy."""
    keras = _k()
    data = data if data is not None else digits()
    model = mlp(data[0].shape[1], hidden, 10, activation, **kw)
    opt = optimizer or keras.optimizers.Adam(1e-3)
    return Trial(
        compiled(model, opt, "sparse_categorical_crossentropy", ["accuracy"]), data, epochs
    )


def small_init(std: float) -> Any:
    return _k().initializers.RandomNormal(stddev=std, seed=0)


# --- the catalogue -----------------------------------------------------------------------


def _sgd(lr: float, momentum: float = 0.0) -> Any:
    return _k().optimizers.SGD(lr, momentum=momentum)


def _adam(lr: float) -> Any:
    return _k().optimizers.Adam(lr)


def _regress(optimizer: Any, data: Data, hidden: Iterable[int] = (64, 64), epochs: int = 15,
             **kw: Any) -> Trial:  # fmt: skip
    model = mlp(data[0].shape[1], hidden, 1, out=None, **kw)
    return Trial(compiled(model, optimizer, "mse"), data, epochs)


def _binary(optimizer: Any, out: str | None, loss: Any, data: Data | None = None) -> Trial:
    data = data if data is not None else moons()
    model = mlp(2, (32, 32), 1, out=out)
    return Trial(compiled(model, optimizer, loss, ["accuracy"]), data, 15)


def _logits_loss(flag: bool) -> Any:
    return _k().losses.SparseCategoricalCrossentropy(from_logits=flag)


def _overfit(n_train: int, noise: float = 0.0) -> Trial:
    data = digits(n_train=n_train, noise=noise)
    return classify((512, 512), optimizer=_adam(1e-3), data=data, epochs=60)


def _cnn(optimizer: Any) -> Trial:
    keras = _k()
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    loss = "sparse_categorical_crossentropy"
    return Trial(compiled(model, optimizer, loss, ["accuracy"]), digits_images(), 12)


def _batchnorm() -> list[Any]:
    return [_k().layers.BatchNormalization()]


def _dropout() -> list[Any]:
    return [_k().layers.Dropout(0.2)]


V, D, S = "vanishing_gradients", "divergence", "slow_convergence"
BROKEN: list[Setup] = [
    Setup("sigmoid-deep-small-init", "10 sigmoid layers, N(0, 0.05) weights, SGD 0.1",
          lambda: classify([32] * 10, "sigmoid", _sgd(0.1), init=small_init(0.05)),
          (V,), (S, "saturation"), ci=True),
    Setup("sigmoid-deep-8", "8 sigmoid layers, Glorot weights, SGD 0.05",
          lambda: classify([32] * 8, "sigmoid", _sgd(0.05)), (V,), (S, "saturation")),
    Setup("tanh-deep-small-init", "15 tanh layers, N(0, 0.05) weights, SGD 0.05",
          lambda: classify([32] * 15, "tanh", _sgd(0.05), init=small_init(0.05)), (V,), (S,)),
    Setup("sigmoid-deep-adam", "12 sigmoid layers, N(0, 0.05) weights, Adam 1e-4",
          lambda: classify([32] * 12, "sigmoid", _adam(1e-4), init=small_init(0.05)),
          (V,), (S, "saturation")),
    Setup("relu-negative-bias", "ReLU layers whose biases start at -5: every unit dead",
          lambda: classify((64, 64), bias=_k().initializers.Constant(-5.0)),
          ("dead_network",), ("dead_units", S), ci=True),
    Setup("relu-negative-bias-one", "one ReLU layer with biases at -1.5: most units dead",
          lambda: classify((64,), bias=_k().initializers.Constant(-1.5),
                           data=digits(scale=1 / 16)),
          ("dead_units", "dead_network"), (S,)),
    Setup("relu-wide-negative-bias", "256-wide ReLU layers with biases at -3",
          lambda: classify((256, 256), bias=_k().initializers.Constant(-3.0)),
          ("dead_network", "dead_units"), (S,)),
    Setup("sgd-lr-10", "SGD at learning rate 10", lambda: classify(optimizer=_sgd(10.0)),
          (D, "nonfinite"), ("exploding_gradients", "oscillation"), ci=True),
    Setup("adam-lr-5", "Adam at learning rate 5", lambda: classify(optimizer=_adam(5.0)),
          (D, "nonfinite"), ("exploding_gradients", "oscillation", "dead_network", "dead_units")),
    Setup("sgd-momentum-lr-3", "SGD with momentum 0.9 at learning rate 3",
          lambda: classify(optimizer=_sgd(3.0, 0.9)), (D, "nonfinite"),
          ("exploding_gradients", "oscillation", "dead_network", "dead_units")),
    Setup("regression-lr-high", "MSE regression on unscaled targets, SGD 0.1",
          lambda: _regress(_sgd(0.1), regression(standardise=False)), ("nonfinite", D),
          ("exploding_gradients", "oscillation")),
    Setup("nan-in-inputs", "a few NaN pixels in the training data, Adam 1e-3",
          lambda: classify(data=_with_nans(digits())), ("nonfinite",), (D,)),
    Setup("adam-lr-1e-7", "Adam at learning rate 1e-7", lambda: classify(optimizer=_adam(1e-7)),
          (S,), (), ci=True),
    Setup("sgd-lr-1e-5", "SGD at learning rate 1e-5", lambda: classify(optimizer=_sgd(1e-5)),
          (S,)),
    Setup("regression-lr-1e-6", "MSE regression, SGD 1e-6",
          lambda: _regress(_sgd(1e-6), regression()), (S,)),
    Setup("random-labels", "labels shuffled: nothing to learn, Adam 1e-3",
          lambda: classify((32,), optimizer=_adam(1e-3), data=shuffled_labels()),
          (S,), ("overfitting",)),
    Setup("tanh-large-init", "tanh layers with N(0, 3) weights",
          lambda: classify((64, 64), "tanh", _sgd(0.01), init=small_init(3.0)),
          ("saturation",), (S, V), ci=True),
    Setup("sigmoid-unscaled-inputs", "sigmoid layers on raw pixel values x 100",
          lambda: classify((64, 64), "sigmoid", _sgd(0.01), data=digits(scale=100.0)),
          ("saturation",), (S, V)),
    Setup("tanh-unscaled-inputs", "tanh layers on raw pixel values x 1000",
          lambda: classify((64, 64), "tanh", _adam(1e-3), data=digits(scale=1000.0)),
          ("saturation",), (S, V)),
    Setup("relu-unscaled-inputs-sgd", "ReLU layers on raw pixel values x 1000, SGD 0.01",
          lambda: classify(optimizer=_sgd(0.01), data=digits(scale=1000.0)),
          (D, "nonfinite"), ("exploding_gradients", "dead_network", "dead_units", "oscillation")),
    Setup("overfit-60-samples", "512x512 network on 60 training samples, 60 epochs",
          lambda: _overfit(60), ("overfitting",), (), ci=True),
    Setup("overfit-label-noise", "512x512 network on 200 samples with 40% wrong labels",
          lambda: _overfit(200, noise=0.4), ("overfitting",)),
    Setup("overfit-regression", "256x256 regression network on 40 samples",
          lambda: _regress(_adam(1e-3), regression(n=1040, n_train=40), (256, 256), 80),
          ("overfitting",)),
    Setup("missing-softmax", "linear last layer with a loss that reads probabilities",
          lambda: Trial(compiled(mlp(64, (64,), 10, out=None), _adam(1e-3),
                                 _logits_loss(False), ["accuracy"]), digits()),
          ("output_mismatch",), (D, "nonfinite", S), ci=True),
    Setup("double-softmax", "softmax last layer with from_logits=True",
          lambda: Trial(compiled(mlp(64, (64,), 10), _sgd(0.01), _logits_loss(True),
                                 ["accuracy"]), digits()),
          ("output_mismatch",), (S,)),
    Setup("missing-sigmoid", "linear last unit with binary cross-entropy on probabilities",
          lambda: _binary(_adam(1e-2), None, "binary_crossentropy"),
          ("output_mismatch",), (D, "nonfinite", S)),
    Setup("sgd-lr-1", "SGD at learning rate 1: ReLUs die as the loss bounces",
          lambda: classify(optimizer=_sgd(1.0)),
          ("oscillation", "dead_network", "dead_units"), (D,)),
    Setup("momentum-0.99", "SGD 0.05 with momentum 0.99: the loss swings",
          lambda: classify(optimizer=_sgd(0.05, 0.99)), ("oscillation", D),
          ("dead_units", "dead_network")),
    Setup("momentum-0.99-regression", "MSE regression, SGD 0.02 with momentum 0.99",
          lambda: _regress(_sgd(0.02, 0.99), regression()), ("oscillation",),
          (D, "dead_units"), ci=True),
    Setup("deep-relu-large-init", "10 ReLU layers with N(0, 1) weights, SGD 0.01",
          lambda: classify([64] * 10, optimizer=_sgd(0.01), init=small_init(1.0)),
          ("nonfinite", D, "exploding_gradients"), ("dead_units", "dead_network")),
]  # fmt: skip
HEALTHY: list[Setup] = [
    Setup("mlp-adam", "2 ReLU layers, Adam 1e-3", lambda: classify(), ci=True),
    Setup("mlp-sgd", "2 ReLU layers, SGD 0.05 momentum 0.9",
          lambda: classify(optimizer=_sgd(0.05, 0.9))),
    Setup("mlp-tanh", "2 tanh layers, Adam 1e-3", lambda: classify(activation="tanh")),
    Setup("mlp-sigmoid-shallow", "1 sigmoid layer, Adam 1e-2",
          lambda: classify((64,), "sigmoid", _adam(1e-2)), ci=True),
    Setup("mlp-batchnorm", "3 ReLU layers with BatchNormalization, Adam 1e-3",
          lambda: classify((64, 64, 64), extra=_batchnorm)),
    Setup("mlp-dropout", "2 ReLU layers with dropout, Adam 1e-3",
          lambda: classify((128, 128), extra=_dropout)),
    Setup("moons-binary", "binary classification of two moons, sigmoid output, Adam 1e-2",
          lambda: _binary(_adam(1e-2), "sigmoid", "binary_crossentropy")),
    Setup("regression-adam", "MSE regression on standardised targets, Adam 1e-3",
          lambda: _regress(_adam(1e-3), regression()), ci=True),
    Setup("logits-output", "linear last layer with from_logits=True, Adam 1e-3",
          lambda: Trial(compiled(mlp(64, (64, 64), 10, out=None), _adam(1e-3),
                                 _logits_loss(True), ["accuracy"]), digits())),
    Setup("cnn", "small ConvNet on 8x8 images, Adam 1e-3", lambda: _cnn(_adam(1e-3))),
    Setup("mlp-rmsprop", "2 ReLU layers, RMSprop 1e-3",
          lambda: classify(optimizer=_k().optimizers.RMSprop(1e-3))),
    Setup("deep-relu-he", "6 ReLU layers, He initialisation, Adam 1e-3",
          lambda: classify([64] * 6, init="he_normal")),
    Setup("sgd-plain", "2 ReLU layers, plain SGD 0.1", lambda: classify(optimizer=_sgd(0.1))),
]  # fmt: skip
SETUPS: list[Setup] = BROKEN + HEALTHY


def run_setup(setup: Setup, seed: int = 0) -> Outcome:
    """Train one set-up with the TrackerCallback; collect what its epochs diagnosed."""
    import keras

    from schemas import epochs, topics
    from trainer.callback import TrackerCallback
    from trainer.publisher import MemoryPublisher

    keras.utils.set_random_seed(seed)
    trial = setup.build()
    xt, yt, xv, yv = trial.data
    publisher = MemoryPublisher()
    tracker = TrackerCallback(
        publisher=publisher,
        simulation_id=uuid.uuid4(),
        probe=(xt[:64], yt[:64]),
        total_epochs=trial.epochs,
        announce=False,
    )
    started = time.perf_counter()
    trial.model.fit(xt, yt, validation_data=(xv, yv), epochs=trial.epochs,
                    batch_size=trial.batch_size, verbose=0, callbacks=[tracker])  # fmt: skip
    outcome = Outcome(setup, epochs=trial.epochs, wall_s=time.perf_counter() - started)
    for raw in publisher.on(topics.EPOCHS):
        event = epochs.decode(raw)
        for d in event.diagnoses or []:  # when a user would first see it
            outcome.reported.setdefault(d.problem, event.epoch)
        if event.evidence is not None:
            _extremes(outcome.extremes, event.evidence)
    return outcome


def _extremes(out: dict[str, float], evidence: Any) -> None:
    """Keep the most alarming value of each layer number the rules threshold: how close a
    healthy run comes to a rule says how much margin its threshold has."""
    layers = evidence.layers
    hidden = layers[:-1]
    pairs = [
        ("max_weight_growth", max, [x.weight_growth for x in layers]),
        ("min_grad_ratio", min, [x.grad_ratio for x in hidden]),
        ("max_dead_fraction", max, [x.dead_fraction for x in layers]),
        ("max_saturation", max, [x.saturation for x in hidden]),
        ("max_update_ratio", max, [x.update_ratio for x in layers]),
    ]
    for key, pick, values in pairs:
        known = [v for v in values if v is not None]
        if known:
            value = pick(known)
            out[key] = pick(out.get(key, value), value)


def score(outcomes: list[Outcome]) -> dict[str, Any]:
    """Recall, precision and median first-detection epoch per problem class."""
    classes = sorted({o.setup.expect[0] for o in outcomes if o.setup.expect}
                     | {p for o in outcomes for p in o.reported})  # fmt: skip
    per: dict[str, Any] = {}
    for c in classes:
        expected = [o for o in outcomes if o.setup.expect and o.setup.expect[0] == c]
        found = [o for o in expected if o.detected]
        reported = [o for o in outcomes if c in o.reported]
        wrong = [o for o in reported if c in o.false_alarms]
        epochs = [min(o.reported[p] for p in o.setup.expect if p in o.reported) for o in found]
        per[c] = {
            "setups": len(expected),
            "recall": round(len(found) / len(expected), 3) if expected else None,
            "reported": len(reported),
            "precision": round(1 - len(wrong) / len(reported), 3) if reported else None,
            "median_first_epoch": statistics.median(epochs) if epochs else None,
        }
    broken = [o for o in outcomes if not o.setup.healthy]
    healthy = [o for o in outcomes if o.setup.healthy]
    return {
        "classes": per,
        "broken": len(broken),
        "detected": sum(o.detected for o in broken),
        "healthy": len(healthy),
        "healthy_false_alarms": {o.setup.name: o.false_alarms for o in healthy if o.false_alarms},
        "broken_false_alarms": {o.setup.name: o.false_alarms for o in broken if o.false_alarms},
        "missed": [o.setup.name for o in broken if not o.detected],
        "healthy_extremes": _merged([o.extremes for o in healthy]),
        "setups": {
            o.setup.name: {"reported": o.reported, "wall_s": round(o.wall_s, 1)} for o in outcomes
        },
    }


GRID_RATES = (0.01, 0.05, 0.3, 3.0, 10.0)
GRID_EPOCHS = 20


def _grid_run(rate: float, stop: bool) -> dict[str, Any]:
    """One run of the early-stop grid: SGD at `rate` on the digits, with or without the rule."""
    import keras

    from schemas.experiment import EarlyStopSpec
    from trainer.callback import TrackerCallback
    from trainer.earlystop import EarlyStopper
    from trainer.publisher import MemoryPublisher

    keras.utils.set_random_seed(0)
    trial = classify(optimizer=_sgd(rate), epochs=GRID_EPOCHS)
    xt, yt, xv, yv = trial.data
    tracker = TrackerCallback(publisher=MemoryPublisher(), probe=(xt[:64], yt[:64]),
                              total_epochs=GRID_EPOCHS, announce=False)  # fmt: skip
    callbacks: list[Any] = [tracker]
    stopper = EarlyStopper(tracker, EarlyStopSpec(enabled=True, patience=2)) if stop else None
    callbacks += [stopper] if stopper else []
    history = trial.model.fit(xt, yt, validation_data=(xv, yv), epochs=GRID_EPOCHS,
                              batch_size=32, verbose=0, callbacks=callbacks)  # fmt: skip
    val = history.history.get("val_accuracy", [float("nan")])
    return {
        "epochs": len(val),
        "val_accuracy": round(float(val[-1]), 4),
        "stopped_by": stopper.reason.problem if stopper and stopper.reason else None,
    }


def early_stop_grid() -> dict[str, Any]:
    """A grid of good and bad learning rates trained twice, without and with early stopping
    (patience 2): the epochs the rule saved, and whether the best run was touched."""
    plain = {rate: _grid_run(rate, stop=False) for rate in GRID_RATES}
    stopped = {rate: _grid_run(rate, stop=True) for rate in GRID_RATES}
    best = max(GRID_RATES, key=lambda r: plain[r]["val_accuracy"])
    planned = GRID_EPOCHS * len(GRID_RATES)
    ran = sum(run["epochs"] for run in stopped.values())
    return {
        "rates": list(GRID_RATES),
        "epochs": GRID_EPOCHS,
        "without": {str(r): plain[r] for r in GRID_RATES},
        "with": {str(r): stopped[r] for r in GRID_RATES},
        "best_rate": best,
        "best_unaffected": stopped[best] == plain[best],
        "stopped_runs": sum(run["stopped_by"] is not None for run in stopped.values()),
        "saved_epoch_share": round(1 - ran / planned, 3),
    }


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def table(result: dict[str, Any]) -> str:
    """docs/benchmarks.md's tables: per problem class, then the early-stop grid."""
    lines = ["| problem | set-ups | recall | reported | precision | median first epoch |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, c in result.get("classes", {}).items():
        lines.append(
            f"| {name} | {c['setups']} | {_num(c['recall'])} | {c['reported']} "
            f"| {_num(c['precision'])} "
            f"| {_num(c['median_first_epoch'])} |"
        )
    lines += [
        "",
        f"{result.get('detected')} of {result.get('broken')} broken set-ups detected; "
        f"false alarms on the {result.get('healthy')} healthy ones: "
        f"{result.get('healthy_false_alarms') or 'none'}. The healthy set-ups' most "
        f"alarming evidence (the thresholds' margin): {result.get('healthy_extremes')}.",
    ]
    grid = result.get("early_stop_grid")
    if grid:
        lines += ["", "| SGD learning rate | epochs, without | val_accuracy | epochs, with "
                  "early stop | stopped by |", "|---|---|---|---|---|"]  # fmt: skip
        for rate in grid["rates"]:
            a, b = grid["without"][str(rate)], grid["with"][str(rate)]
            lines.append(
                f"| {rate:g} | {a['epochs']} | {a['val_accuracy']} | {b['epochs']} "
                f"| {b['stopped_by'] or '—'} |"
            )
        lines += [
            "",
            f"Early stopping saved {grid['saved_epoch_share']:.0%} of the grid's epochs; the "
            f"best run (learning rate {grid['best_rate']:g}) "
            + ("was unaffected." if grid["best_unaffected"] else "CHANGED."),
        ]
    return "\n".join(lines)


def _merged(extremes: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for one in extremes:
        for key, value in one.items():
            pick = max if key.startswith("max_") else min
            out[key] = round(pick(out.get(key, value), value), 6)
    return out


def run(only: list[str] | None = None, ci: bool = False) -> dict[str, Any]:
    """Every set-up (or the CI subset, or the named ones); the score, and the early-stop grid
    when the whole catalogue ran."""
    chosen = [s for s in SETUPS if (not ci or s.ci) and (not only or s.name in only)]
    outcomes = []
    for setup in chosen:
        outcome = run_setup(setup)
        mark = "ok" if (outcome.detected or setup.healthy) and not outcome.false_alarms else "!!"
        print(f"{mark} {setup.name:28s} {outcome.reported} ({outcome.wall_s:.1f}s)", flush=True)
        outcomes.append(outcome)
    result = score(outcomes)
    if not only and not ci:
        result["early_stop_grid"] = early_stop_grid()
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(sys.argv[1:] or None), indent=1))
