"""Summary statistics, histograms and health flags of one tensor (pure NumPy)."""

from __future__ import annotations

import math

import numpy as np

from schemas.tensors import TensorStats

HIST_BINS = 32
# Thresholds for health flags; a gradient norm outside them is worth a look, not an error.
VANISHING_NORM = 1e-7
EXPLODING_NORM = 1e3
DEAD_UNITS_FRACTION = 0.5


def _f(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def tensor_stats(array: np.ndarray, previous: np.ndarray | None = None) -> TensorStats:
    """Mean, std, min, max, L2 norm, zero fraction, non-finite count, 32-bin histogram."""
    flat = np.asarray(array, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    nonfinite = int(flat.size - finite.size)
    stats = TensorStats(nonfinite=nonfinite, flags=["nonfinite"] if nonfinite else [])
    if flat.size:
        stats.zero_fraction = float(np.count_nonzero(flat == 0) / flat.size)
    if finite.size:
        stats.mean = _f(finite.mean())
        stats.std = _f(finite.std())
        stats.min = _f(finite.min())
        stats.max = _f(finite.max())
        stats.norm = _f(float(np.linalg.norm(finite)))
        counts, edges = np.histogram(finite, bins=HIST_BINS)
        stats.hist_counts = [int(c) for c in counts]
        stats.hist_edges = [float(e) for e in edges]
    if previous is not None:
        stats.cosine_prev = cosine(flat, np.asarray(previous, dtype=np.float64).ravel())
    return stats


def cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cosine similarity of two flat vectors; None when undefined (zero or non-finite)."""
    if a.shape != b.shape:
        return None
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    if denom == 0 or not math.isfinite(denom):
        return None
    return _f(float(np.dot(a, b)) / denom)


def gradient_flags(stats: TensorStats) -> list[str]:
    """Vanishing or exploding gradient flags from a gradient's norm."""
    if stats.norm is None:
        return []
    if stats.norm < VANISHING_NORM:
        return ["vanishing_gradient"]
    if stats.norm > EXPLODING_NORM:
        return ["exploding_gradient"]
    return []


def dead_fraction(activation: np.ndarray) -> float | None:
    """Fraction of units (last axis) that output exactly zero for every probe sample."""
    act = np.asarray(activation)
    if act.ndim < 2 or act.shape[-1] == 0:
        return None
    units = act.reshape(-1, act.shape[-1])
    return float(np.mean(np.all(units == 0, axis=0)))


def activation_flags(activation: np.ndarray) -> list[str]:
    """`dead_units` when at least half of a layer's units never fire on the probe batch."""
    fraction = dead_fraction(activation)
    return ["dead_units"] if fraction is not None and fraction >= DEAD_UNITS_FRACTION else []
