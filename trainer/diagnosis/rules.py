"""Rules that turn a run's evidence into named problems (schemas.diagnosis.Diagnosis).

Every threshold is relative to the run itself (its first loss, its last layer's gradient,
its layers' own weight norms) or to what a network that learned nothing scores on the same
labels (`reference_loss`, trainer.diagnosis.facts), so one rule fits any data set and any
architecture. docs/diagnosis.md gives each threshold's source; the pathology suite
(tests/pathologies, `make bench`) measures recall and precision per problem.

A problem that explains another hides it: a diverged network's dead units and tiny
gradients are consequences, and naming them would send the user after the wrong fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from schemas.diagnosis import FATAL, TITLES, Diagnosis, Evidence, LayerEvidence

# --- thresholds (sources in docs/diagnosis.md) ---------------------------------------------
VANISHING_RATIO = 1e-3  # a layer's gradient RMS below this share of the last layer's
EXPLODING_UPDATE = 1.0  # weights moved by more than their own norm in one logged epoch
EXPLODING_GROWTH = 10.0  # ... and have grown this much since the first epoch
DEAD_NETWORK = 0.95  # share of a rectifier layer's units dead: nothing passes
DEAD_UNITS = 0.5  # share of a rectifier layer's units dead: half the layer is wasted
SATURATED = 0.5  # share of a hidden sigmoid/tanh layer's outputs at its bounds
DIVERGED_REFERENCE = 3.0  # loss this many times what a constant guess scores
DIVERGED_FIRST = 10.0  # loss this many times its first value
DIVERGED_GROWTH = 100.0  # a layer's weights this many times their norm before training
RISING = 2.0  # loss this many times its best, and still rising
OSCILLATING = 0.3  # share of the loss's recent movement that went up (0.5: pure swinging) ...
OSCILLATION_SWING = 0.1  # ... moving back and forth by this share of its level per epoch ...
OSCILLATION_TURNS = 2  # ... and turning at least this often in the window
RISING_STEADILY = 0.7  # share of the movement that went up: a rise, not a swing
SLOW_MIN_EPOCHS = 5  # epochs before a run may be called slow
SLOW_REFERENCE = 0.85  # loss still this close to what a constant guess scores
SLOW_IMPROVEMENT = 0.05  # without a reference: share of the first loss removed
OVERFIT_RISE = 0.05  # validation loss this far above its best (Prechelt's GL > 5) ...
OVERFIT_PATIENCE = 5  # ... for this many logged epochs in a row ...
OVERFIT_TRAIN_FALL = 0.7  # ... while the training loss fell below this share of its value then
HOLD = 2  # logged epochs a warning about layers must hold before it is shown

HIDDEN_BY: dict[str, frozenset[str]] = {
    # problem -> problems that explain it when present
    "divergence": frozenset({"nonfinite"}),
    "exploding_gradients": frozenset({"nonfinite", "divergence"}),
    "dead_network": frozenset({"nonfinite", "divergence"}),
    "dead_units": frozenset({"nonfinite", "divergence", "dead_network"}),
    "vanishing_gradients": frozenset({"nonfinite", "divergence", "dead_network"}),
    "saturation": frozenset({"nonfinite", "divergence"}),
    "oscillation": frozenset({"nonfinite", "divergence", "output_mismatch"}),
    "slow_convergence": frozenset(
        {
            "nonfinite",
            "divergence",
            "dead_network",
            "dead_units",
            "vanishing_gradients",
            "saturation",
            "output_mismatch",
            "oscillation",
        }
    ),  # fmt: skip
    "overfitting": frozenset({"nonfinite", "divergence", "output_mismatch", "oscillation"}),
}
FIXES: dict[str, str] = {
    "nonfinite": "lower the learning rate (try {lr_10}), clip gradients (clipnorm=1.0 in the "
    "optimizer) and check the data for NaN{inputs}",
    "divergence": "lower the learning rate (try {lr_10}) or clip gradients (clipnorm=1.0){inputs}",
    "exploding_gradients": "clip gradients (clipnorm=1.0), lower the learning rate (try "
    "{lr_10}) or add BatchNormalization{inputs}",
    "vanishing_gradients": "use ReLU instead of {act}, He initialisation "
    "(kernel_initializer='he_normal'), BatchNormalization, or fewer layers",
    "dead_network": "lower the learning rate, start biases at zero (bias_initializer='zeros'), "
    "or use LeakyReLU / He initialisation",
    "dead_units": "lower the learning rate, start biases at zero, or use LeakyReLU",
    "saturation": "normalise the inputs, use smaller initial weights (glorot_uniform) or put "
    "BatchNormalization before the {act}, or use ReLU{inputs}",
    "oscillation": "lower the learning rate (try {lr_3}) or use larger batches",
    "slow_convergence": "raise the learning rate (try {lr_x10}){inputs}",
    "overfitting": "get more data or augment it, add dropout or L2 regularisation, use a "
    "smaller model, or keep the weights of epoch {best_val_epoch} (early stopping on val_loss)",
    "output_mismatch": "{mismatch_fix}",
}


def power(value: float) -> str:
    """10⁻⁵ for 1.2e-5: the order of magnitude, as a person reads it."""
    if value <= 0 or not math.isfinite(value):
        return f"{value:.2g}"
    exp = math.floor(math.log10(value))
    digits = str(exp).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"10{digits}"


def where(layers: list[LayerEvidence]) -> str:
    """'layer dense_1' or 'layers 1–3 (dense, dense_1, dense_2)': 1-based model positions."""
    if len(layers) == 1:
        return f"layer {layers[0].layer_name}"
    first, last = layers[0].layer_index + 1, layers[-1].layer_index + 1
    names = ", ".join(x.layer_name for x in layers[:4]) + (", …" if len(layers) > 4 else "")
    return f"layers {first}–{last} ({names})"


@dataclass
class Finding:
    """One rule's verdict at one epoch, before it becomes a Diagnosis."""

    problem: str
    summary: str
    layers: list[str] = field(default_factory=list)
    evidence: dict[str, float | str | None] = field(default_factory=dict)
    fix_args: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    """What the rules know beside the evidence: the optimiser's rate, the plan, the facts."""

    learning_rate: float | None = None
    total_epochs: int = 0
    facts: dict[str, float | str | None] = field(default_factory=dict)

    @property
    def reference(self) -> float | None:
        value = self.facts.get("reference_loss")
        return float(value) if isinstance(value, (int, float)) and value > 0 else None


Rule = Callable[[list[Evidence], Context], Finding | None]


def _nonfinite(history: list[Evidence], ctx: Context) -> Finding | None:
    bad = history[-1].trend.nonfinite
    if not bad:
        return None
    return Finding("nonfinite", f"{', '.join(bad[:4])} became NaN or infinite",
                   evidence={"nonfinite": ", ".join(bad)})  # fmt: skip


def _divergence(history: list[Evidence], ctx: Context) -> Finding | None:
    t = history[-1].trend
    if t.loss is None or t.first_loss is None:
        return None
    ref = ctx.reference
    falling = t.slope is not None and t.slope < -0.02
    if ref and t.loss > DIVERGED_REFERENCE * ref and not falling:
        why = f"loss {t.loss:.3g} is {t.loss / ref:.1f}× what a constant guess scores ({ref:.3g})"
    elif t.loss > DIVERGED_FIRST * t.first_loss:
        why = f"loss {t.loss:.3g} is {t.loss / t.first_loss:.0f}× its first value"
    elif t.best_loss and t.loss > RISING * t.best_loss and (t.rising or 0) >= RISING_STEADILY:
        why = f"loss {t.loss:.3g} has risen to {t.loss / t.best_loss:.1f}× its best"
    elif grown := _blown_up(history):
        top = max(grown, key=lambda x: x.weight_growth or 0)
        why = (f"{where(grown)}: weights blew up to {top.weight_growth:,.0f}× their size before "
               "training")  # fmt: skip
        return Finding("divergence", why, [x.layer_name for x in grown],
                       {"weight_growth": top.weight_growth, "loss": t.loss})  # fmt: skip
    else:
        return None
    return Finding("divergence", why, evidence={"loss": t.loss, "reference_loss": ref,
                                                "first_loss": t.first_loss})  # fmt: skip


def _blown_up(history: list[Evidence]) -> list[LayerEvidence]:
    """Layers whose weights grew past DIVERGED_GROWTH times their initial norm: a step too
    large for the network, even when the loss has since settled (at a dead network's level)."""
    return [x for x in history[-1].layers if (x.weight_growth or 0) > DIVERGED_GROWTH]


def _exploding(history: list[Evidence], ctx: Context) -> Finding | None:
    hit = [
        x for x in history[-1].layers
        if (x.update_ratio or 0) > EXPLODING_UPDATE and (x.weight_growth or 0) > EXPLODING_GROWTH
    ]  # fmt: skip
    if not hit:
        return None
    top = max(hit, key=lambda x: x.weight_growth or 0)
    return Finding(
        "exploding_gradients",
        f"{where(hit)}: weights grew {top.weight_growth:.0f}× and moved by "
        f"{top.update_ratio:.1f}× their size in one epoch",
        [x.layer_name for x in hit],
        {"weight_growth": top.weight_growth, "update_ratio": top.update_ratio},
    )


def _vanishing(history: list[Evidence], ctx: Context) -> Finding | None:
    ratios = [(x, x.grad_ratio) for x in history[-1].layers if x.grad_ratio is not None]
    hit = [(x, r) for x, r in ratios[:-1] if r < VANISHING_RATIO]
    if not hit:
        return None
    low = min(r for _, r in hit)
    hit_layers = [x for x, _ in hit]
    return Finding(
        "vanishing_gradients",
        f"{where(hit_layers)}: gradients {power(low)} of the last layer's",
        [x.layer_name for x in hit_layers],
        {"grad_ratio": low},
        {"act": next((x.activation for x in hit_layers if x.activation), None) or "sigmoid/tanh"},
    )


def _dead(history: list[Evidence], ctx: Context) -> Finding | None:
    layers = [x for x in history[-1].layers if x.dead_fraction is not None]
    dead = [x for x in layers if x.dead_fraction >= DEAD_NETWORK]  # type: ignore[operator]
    if dead:
        return Finding(
            "dead_network",
            f"{where(dead)}: {dead[0].dead_fraction:.0%} of the ReLU units output zero for "
            "every sample, so nothing reaches the layers after",
            [x.layer_name for x in dead],
            {"dead_fraction": dead[0].dead_fraction},
        )
    hit = [x for x in layers if x.dead_fraction >= DEAD_UNITS]  # type: ignore[operator]
    if not hit:
        return None
    top = max(hit, key=lambda x: x.dead_fraction or 0)
    return Finding(
        "dead_units",
        f"{where(hit)}: {top.dead_fraction:.0%} of the ReLU units never fire",
        [x.layer_name for x in hit],
        {"dead_fraction": top.dead_fraction},
    )


def _saturation(history: list[Evidence], ctx: Context) -> Finding | None:
    hidden = history[-1].layers[:-1]  # a confident output layer is meant to sit at its bounds
    hit = [x for x in hidden if (x.saturation or 0) >= SATURATED]
    if not hit:
        return None
    top = max(hit, key=lambda x: x.saturation or 0)
    return Finding(
        "saturation",
        f"{where(hit)}: {top.saturation:.0%} of the {top.activation} outputs sit at their "
        "bounds, where their gradient is near zero",
        [x.layer_name for x in hit],
        {"saturation": top.saturation},
        {"act": top.activation or "activation"},
    )


def _oscillation(history: list[Evidence], ctx: Context) -> Finding | None:
    t = history[-1].trend
    if t.rising is None or t.swing is None or t.rising < OSCILLATING:
        return None
    if t.swing < OSCILLATION_SWING or t.rising >= RISING_STEADILY:
        return None
    if (t.turns or 0) < OSCILLATION_TURNS:
        return None  # one bump is not a swing
    return Finding(
        "oscillation",
        f"the loss turned {t.turns} times in the last epochs, moving back and forth by "
        f"{t.swing:.0%} of its level per epoch",
        evidence={"rising": t.rising, "swing": t.swing},
    )


def _slow(history: list[Evidence], ctx: Context) -> Finding | None:
    t, epoch = history[-1].trend, history[-1].epoch
    if t.loss is None or epoch < min(SLOW_MIN_EPOCHS, max(ctx.total_epochs, 1)):
        return None
    ref = ctx.reference
    moved = [x.update_ratio for x in history[-1].layers if x.update_ratio is not None]
    step = f"; weights move {power(max(moved))} of their size per epoch" if moved else ""
    if ref:
        if t.loss < SLOW_REFERENCE * ref or (t.slope or 0) < -0.05:
            return None
        why = f"after {epoch} epochs the loss ({t.loss:.3g}) is still {t.loss / ref:.0%} of " \
              f"what a constant guess scores{step}"  # fmt: skip
    elif t.improvement is not None and t.improvement < SLOW_IMPROVEMENT:
        why = f"after {epoch} epochs the loss fell only {t.improvement:.1%}{step}"
    else:
        return None
    return Finding("slow_convergence", why, evidence={"loss": t.loss, "reference_loss": ref})


def _overfitting(history: list[Evidence], ctx: Context) -> Finding | None:
    recent = history[-OVERFIT_PATIENCE:]
    if len(recent) < OVERFIT_PATIENCE or any(
        e.trend.val_rise is None or e.trend.val_rise < OVERFIT_RISE for e in recent
    ):
        return None
    t = history[-1].trend
    vals = [e for e in history if e.trend.val_loss is not None]
    best = min(vals, key=lambda e: e.trend.val_loss or 0.0)
    if best.trend.loss is None or t.loss is None or t.loss > OVERFIT_TRAIN_FALL * best.trend.loss:
        return None  # the training loss must still be falling: else it is not memorising
    return Finding(
        "overfitting",
        f"validation loss has stayed {t.val_rise:.0%} or more above its best (epoch "
        f"{best.epoch}) for {len(recent)} epochs while the training loss fell "
        f"{1 - t.loss / best.trend.loss:.0%}",
        evidence={"val_rise": t.val_rise, "gap": t.gap, "best_val_epoch": best.epoch},
        fix_args={"best_val_epoch": str(best.epoch)},
    )


def _mismatch(history: list[Evidence], ctx: Context) -> Finding | None:
    f, out = ctx.facts, history[-1].output
    loss, act = str(f.get("loss") or ""), f.get("output_activation")
    if "crossentropy" not in loss:
        return None
    low, high = out.get("output_min"), out.get("output_max")
    if not f.get("from_logits") and act not in ("softmax", "sigmoid"):
        if isinstance(low, float) and isinstance(high, float) and low >= 0 and high <= 1:
            return None
        return Finding(
            "output_mismatch",
            f"the loss reads probabilities, but the last layer ({act or 'linear'}) outputs "
            f"values from {low:.3g} to {high:.3g}" if isinstance(low, float) else
            f"the loss reads probabilities, but the last layer is {act or 'linear'}",
            evidence={"output_min": low, "output_max": high},
            fix_args={"mismatch_fix": "add activation='softmax' (or 'sigmoid' for one unit) to "
                      "the last layer, or set from_logits=True in the loss"},
        )  # fmt: skip
    if f.get("from_logits") and act in ("softmax", "sigmoid"):
        return Finding(
            "output_mismatch",
            f"the loss reads logits (from_logits=True), but the last layer already applies "
            f"{act}: the outputs are squashed twice and learn slowly",
            fix_args={"mismatch_fix": f"remove the {act} from the last layer, or set "
                      "from_logits=False in the loss"},
        )  # fmt: skip
    return None


RULES: list[Rule] = [
    _nonfinite, _divergence, _dead, _mismatch, _vanishing, _exploding, _saturation,
    _oscillation, _slow, _overfitting,
]  # fmt: skip
LAYER_WARNINGS = frozenset({"dead_units", "vanishing_gradients", "saturation"})


def findings(history: list[Evidence], ctx: Context) -> list[Finding]:
    """Every problem the latest evidence shows, less those another one explains."""
    found = [f for rule in RULES if (f := rule(history, ctx)) is not None]
    present = {f.problem for f in found}
    return [f for f in found if not (HIDDEN_BY.get(f.problem, frozenset()) & present)]


def _fix_args(ctx: Context) -> dict[str, str]:
    lr = ctx.learning_rate
    big = ctx.facts.get("input_abs_max")
    inputs = (
        f"; normalise the inputs (they reach {big:.3g})"
        if isinstance(big, (int, float)) and big > 20
        else ""
    )
    return {
        "lr_10": f"{lr / 10:g}" if lr else "10× smaller",
        "lr_3": f"{lr / 3:.2g}" if lr else "3× smaller",
        "lr_x10": f"{lr * 10:g}" if lr else "10× larger",
        "inputs": inputs,
        "act": "sigmoid/tanh",
        "best_val_epoch": "?",
        "mismatch_fix": "",
    }


@dataclass
class Diagnoser:
    """Keeps a run's evidence and when each problem began; `update` gives the active ones."""

    context: Context = field(default_factory=Context)
    history: list[Evidence] = field(default_factory=list)
    since: dict[str, int] = field(default_factory=dict)  # problem -> first epoch of its streak
    streak: dict[str, int] = field(default_factory=dict)  # problem -> logged epochs in a row

    def update(self, evidence: Evidence) -> list[Diagnosis]:
        """Add one logged epoch's evidence; the problems active now, fatal first."""
        self.history.append(evidence)
        found = findings(self.history, self.context)
        present = {f.problem for f in found}
        for problem in list(self.since):
            if problem not in present:
                del self.since[problem]
                self.streak.pop(problem, None)
        out = []
        for f in found:
            self.since.setdefault(f.problem, evidence.epoch)
            self.streak[f.problem] = self.streak.get(f.problem, 0) + 1
            if f.problem in LAYER_WARNINGS and self.streak[f.problem] < self._hold():
                continue  # one probe batch can catch a layer mid-change: wait for a second look
            out.append(self._diagnosis(f, evidence.epoch))
        return sorted(out, key=lambda d: (d.severity != "fatal", d.first_epoch, d.problem))

    def _hold(self) -> int:
        remaining = self.context.total_epochs - (self.history[-1].epoch if self.history else 0)
        return 1 if remaining <= 0 else HOLD

    def _diagnosis(self, f: Finding, epoch: int) -> Diagnosis:
        first = self.since[f.problem]
        args = {**_fix_args(self.context), **f.fix_args}
        return Diagnosis(
            problem=f.problem,  # type: ignore[arg-type]
            severity="fatal" if f.problem in FATAL else "warning",
            title=TITLES[f.problem],
            summary=f.summary[:500],  # the pages, the CLI and alerts add "since epoch N"
            fix=FIXES[f.problem].format(**args)[:500],
            layers=f.layers,
            first_epoch=first,
            last_epoch=epoch,
            evidence={k: _clean(v) for k, v in f.evidence.items()},
        )


def _clean(value: float | str | None) -> float | str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
