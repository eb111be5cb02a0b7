"""Summary statistics, histograms and the non-finite flag of one tensor (pure NumPy)."""

from __future__ import annotations

import math

import numpy as np

from schemas.tensors import TensorStats

HIST_BINS = 32
# Health flags beyond `nonfinite` come from the run's diagnoses (trainer.diagnosis): the
# callback marks the tensors of the layers a diagnosis names with its problem.


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
