"""Evidence, spectral statistics and diagnosis rules, on hand-made arrays and loss curves."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.diagnosis import Evidence, LayerEvidence, TrendEvidence
from trainer.diagnosis.evidence import EvidenceTracker, LayerArrays, dead_fraction, saturation
from trainer.diagnosis.rules import Context, Diagnoser, findings, power
from trainer.diagnosis.spectral import spectral

pytestmark = pytest.mark.unit


def test_spectral_alpha_tells_a_random_matrix_from_a_heavy_tailed_one() -> None:
    rng = np.random.default_rng(0)
    random_alpha, random_rank = spectral(rng.normal(size=(512, 256)) / 16)
    heavy_alpha, _ = spectral(rng.standard_cauchy(size=(512, 256)) / 16)
    assert random_alpha is not None and heavy_alpha is not None
    assert random_alpha > 6 > 2 > heavy_alpha or heavy_alpha < random_alpha / 2
    assert random_rank is not None and random_rank > 50


def test_stable_rank_counts_the_directions_that_carry_the_weights() -> None:
    rank_one = np.outer(np.arange(1, 41), np.arange(1, 21)).astype(float)
    assert spectral(rank_one)[1] == pytest.approx(1.0)
    assert spectral(np.eye(30))[1] == pytest.approx(30.0)
    assert spectral(np.ones(5)) == (None, None)  # a bias has no spectrum
    assert spectral(np.full((20, 20), np.nan)) == (None, None)


def test_dead_units_are_counted_only_for_rectifiers_and_saturation_only_for_squashers() -> None:
    out = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 2.0, 0.0, 3.0]])
    assert dead_fraction("relu", out) == 0.5
    assert dead_fraction("linear", out) is None and dead_fraction(None, out) is None
    tanh = np.array([[0.999, -0.995, 0.1, 0.5]])
    assert saturation("tanh", tanh) == 0.5
    assert saturation("relu", tanh) is None


def test_the_tracker_measures_growth_updates_and_gradient_ratios() -> None:
    tracker = EvidenceTracker()
    w0 = np.ones((4, 3))
    tracker.start("a", w0)
    tracker.start("b", w0)
    tracker.epoch_end({"loss": 2.0})
    layers = [
        LayerArrays(0, "a", "relu", kernel=w0 * 3, gradient=np.full((4, 3), 1e-6)),
        LayerArrays(1, "b", "softmax", kernel=w0, gradient=np.full((4, 3), 1e-1)),
    ]
    ev = tracker.evidence(1, layers, {})
    a, b = ev.layers
    assert a.weight_growth == pytest.approx(3.0) and b.weight_growth == pytest.approx(1.0)
    assert a.update_ratio == pytest.approx(2 / 3) and b.update_ratio == 0.0
    assert a.grad_ratio == pytest.approx(1e-5) and b.grad_ratio == pytest.approx(1.0)
    nan = LayerArrays(0, "a", "relu", kernel=np.full((4, 3), np.nan))
    tracker.epoch_end({"loss": float("nan")})
    ev = tracker.evidence(2, [nan], {})
    assert ev.trend.nonfinite == ["loss", "a weights"]


def test_the_trend_tells_a_steady_fall_from_a_swing() -> None:
    falling, swinging = EvidenceTracker(), EvidenceTracker()
    for i in range(8):
        falling.epoch_end({"loss": 2.0 * 0.8**i})
        swinging.epoch_end({"loss": 1.0 + 0.4 * (-1) ** i})
    down, zigzag = falling.trend(), swinging.trend()
    assert (down.rising, down.turns) == (0.0, 0) and down.swing == pytest.approx(0.0)
    assert down.improvement == pytest.approx(1 - 0.8**7)
    assert zigzag.rising == pytest.approx(3 / 7) and zigzag.turns == 6 and zigzag.swing > 0.5


def _ev(epoch: int, layers: list[LayerEvidence] | None = None, **trend: object) -> Evidence:
    return Evidence(epoch=epoch, layers=layers or [], trend=TrendEvidence(**trend))


def _layer(i: int, name: str, **kw: object) -> LayerEvidence:
    return LayerEvidence(layer_index=i, layer_name=name, **kw)


def test_divergence_hides_the_dead_units_it_caused() -> None:
    layers = [_layer(0, "dense", activation="relu", dead_fraction=1.0, weight_growth=2000.0)]
    ctx = Context(learning_rate=10.0, facts={"reference_loss": 2.3})
    found = findings([_ev(1, layers, loss=2.4, first_loss=596.0, best_loss=2.4)], ctx)
    assert [f.problem for f in found] == ["divergence"]
    assert "2,000×" in found[0].summary


def test_vanishing_gradients_show_after_two_logged_epochs_with_the_layers_and_the_fix() -> None:
    layers = [
        _layer(0, "d0", activation="sigmoid", grad_ratio=2e-6),
        _layer(1, "d1", activation="sigmoid", grad_ratio=3e-4),
        _layer(2, "d2", activation="sigmoid", grad_ratio=0.2),
        _layer(3, "out", activation="softmax", grad_ratio=1.0),
    ]
    diagnoser = Diagnoser(Context(learning_rate=0.1, total_epochs=10))
    assert diagnoser.update(_ev(1, layers, loss=2.3, first_loss=2.3)) == []
    (d,) = diagnoser.update(_ev(2, layers, loss=2.3, first_loss=2.3))
    assert (d.problem, d.severity, d.layers, d.first_epoch, d.last_epoch) == (
        "vanishing_gradients", "warning", ["d0", "d1"], 1, 2,
    )  # fmt: skip
    assert d.summary == "layers 1–2 (d0, d1): gradients 10⁻⁶ of the last layer's"
    assert "ReLU instead of sigmoid" in d.fix and "he_normal" in d.fix


def test_a_problem_that_goes_away_starts_a_new_streak_when_it_returns() -> None:
    diagnoser = Diagnoser(Context(learning_rate=1.0, facts={"reference_loss": 1.0}))
    bad, good = {"loss": 9.0, "first_loss": 1.0}, {"loss": 0.5, "first_loss": 1.0, "slope": -0.5}
    assert [d.problem for d in diagnoser.update(_ev(1, **bad))] == ["divergence"]
    assert diagnoser.update(_ev(2, **good)) == []
    (d,) = diagnoser.update(_ev(3, **bad))
    assert (d.first_epoch, d.severity) == (3, "fatal") and "try 0.1" in d.fix


def test_slow_convergence_waits_five_epochs_and_compares_with_a_constant_guess() -> None:
    ctx = Context(learning_rate=1e-6, total_epochs=20, facts={"reference_loss": 2.3})
    flat = {"loss": 2.29, "first_loss": 2.3, "slope": -0.001}
    assert findings([_ev(4, **flat)], ctx) == []
    (f,) = findings([_ev(5, **flat)], ctx)
    assert f.problem == "slow_convergence" and "100% of what a constant guess scores" in f.summary
    assert findings([_ev(5, loss=0.5, first_loss=2.3, slope=-0.3)], ctx) == []


def test_overfitting_needs_a_sustained_rise_of_validation_loss_while_training_falls() -> None:
    ctx = Context(total_epochs=60)
    history = [_ev(1, loss=1.0, val_loss=0.5, val_rise=0.0)]
    history += [_ev(e, loss=0.5 / e, val_loss=0.6, val_rise=0.2, gap=1.0) for e in range(2, 6)]
    assert findings(history, ctx) == []  # four epochs above the best: not yet
    history.append(_ev(6, loss=0.05, val_loss=0.6, val_rise=0.2, gap=11.0))
    (f,) = findings(history, ctx)
    assert f.problem == "overfitting" and f.evidence["best_val_epoch"] == 1
    assert "epoch 1" in FIX_OF(f)


def FIX_OF(f: object) -> str:  # noqa: N802 - reads like the field it returns
    from trainer.diagnosis.rules import FIXES, _fix_args

    return FIXES[f.problem].format(**{**_fix_args(Context()), **f.fix_args})  # type: ignore[attr-defined]


def test_a_loss_that_reads_probabilities_behind_a_linear_layer_is_a_mismatch() -> None:
    facts = {"loss": "sparsecategoricalcrossentropy", "from_logits": 0.0}
    ctx = Context(facts={**facts, "output_activation": "linear"})
    ev = Evidence(epoch=1, output={"output_min": -3.0, "output_max": 4.0})
    (f,) = findings([ev], ctx)
    assert f.problem == "output_mismatch" and "-3 to 4" in f.summary
    double = Context(facts={**facts, "from_logits": 1.0, "output_activation": "softmax"})
    assert findings([Evidence(epoch=1)], double)[0].summary.startswith("the loss reads logits")
    fine = Context(facts={**facts, "output_activation": "softmax"})
    assert findings([Evidence(epoch=1)], fine) == []


def test_powers_of_ten_read_as_people_write_them() -> None:
    assert (power(1.2e-5), power(0.5), power(3e3)) == ("10⁻⁵", "10⁻¹", "10³")
