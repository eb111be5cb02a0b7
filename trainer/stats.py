"""Summary statistics, histograms and the non-finite flag of one tensor (pure NumPy).

Computed in the tensor's own precision (float32 for Keras weights): a ResNet50's 47M weights
and gradients take a few tenths of a second per logged epoch, where float64 copies and
`np.histogram` took seconds. Sums are pairwise (NumPy's), so float32 loses nothing a chart
shows; a norm that overflows float32 is taken again in float64.
"""

from __future__ import annotations

import math

import numpy as np

from schemas.tensors import TensorStats

HIST_BINS = 32
# Health flags beyond `nonfinite` come from the run's diagnoses (trainer.diagnosis): the
# callback marks the tensors of the layers a diagnosis names with its problem.


def _f(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def flat_values(array: np.ndarray) -> np.ndarray:
    """The values as one flat float vector (float32 and float64 kept, others float32)."""
    flat = np.asarray(array).ravel()
    if flat.dtype not in (np.float32, np.float64):
        flat = flat.astype(np.float32)
    return flat


def norm(flat: np.ndarray) -> float:
    """L2 norm of a flat vector: BLAS in its own precision, float64 when that overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.sqrt(np.dot(flat, flat)))
    if not math.isfinite(value) and np.all(np.isfinite(flat)):
        value = float(np.linalg.norm(flat.astype(np.float64)))
    return value


def histogram(finite: np.ndarray, low: float, high: float) -> tuple[list[int], list[float]]:
    """np.histogram(finite, bins=32)'s counts and edges, in one scaled pass and a bincount."""
    if low == high:  # np.histogram's convention for a constant tensor
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, HIST_BINS + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = finite - finite.dtype.type(low)
        scaled *= finite.dtype.type(HIST_BINS / (high - low))
    np.clip(scaled, 0, HIST_BINS - 1, out=scaled)  # the top edge belongs to the last bin
    counts = np.bincount(scaled.astype(np.uint8), minlength=HIST_BINS)
    return [int(c) for c in counts], [float(e) for e in edges]


def tensor_stats(array: np.ndarray, previous: np.ndarray | None = None) -> TensorStats:
    """Mean, std, min, max, L2 norm, zero fraction, non-finite count, 32-bin histogram."""
    flat = flat_values(array)
    # A sum in float64 is finite exactly when every value is (float32 values cannot
    # overflow it), so the finite mask and its copy are made only when something is not.
    total = float(flat.sum(dtype=np.float64)) if flat.size else 0.0
    finite = flat if math.isfinite(total) else flat[np.isfinite(flat)]
    nonfinite = int(flat.size - finite.size)
    stats = TensorStats(nonfinite=nonfinite, flags=["nonfinite"] if nonfinite else [])
    if flat.size:
        stats.zero_fraction = float((flat.size - np.count_nonzero(flat)) / flat.size)
    if finite.size:
        total = total if finite is flat else float(finite.sum(dtype=np.float64))
        mean = total / finite.size
        with np.errstate(over="ignore", invalid="ignore"):
            centred = finite - finite.dtype.type(mean)
        stats.mean = _f(mean)
        stats.std = _f(norm(centred) / math.sqrt(finite.size))
        low, high = float(finite.min()), float(finite.max())
        stats.min, stats.max = _f(low), _f(high)
        stats.norm = _f(norm(finite))
        if math.isfinite(high - low):
            stats.hist_counts, stats.hist_edges = histogram(finite, low, high)
    if previous is not None:
        stats.cosine_prev = cosine(flat, flat_values(previous))
    return stats


def cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cosine similarity of two flat vectors; None when undefined (zero or non-finite)."""
    if a.shape != b.shape:
        return None
    denom = norm(a) * norm(b)
    if denom == 0 or not math.isfinite(denom):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        dot = float(np.dot(a, b))
    if not math.isfinite(dot):  # float32 products that overflow: again in float64
        dot = float(np.dot(a.astype(np.float64), b.astype(np.float64)))
    return _f(dot / denom)
