"""Calibration of single-label probabilities: expected calibration error, negative log-likelihood,
and the softmax temperature that minimises NLL on held-out clips (Guo et al. 2017).

Probabilities ``(N, C)`` and integer targets ``(N,)``. A temperature ``t`` rescales logits; the
logits are recovered as ``log p`` (softmax is shift-invariant), so ``p_t = softmax(log p / t)``.
"""

from __future__ import annotations

import numpy as np


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, n_bins: int = 15) -> float:
    """Top-1 ECE: confidence against accuracy in ``n_bins`` equal-width confidence bins, weighted by
    the share of clips in each bin."""
    probs, targets = np.asarray(probs, np.float64), np.asarray(targets, np.int64)
    if len(targets) == 0:
        return 0.0
    conf = probs.max(1)
    right = (probs.argmax(1) == targets).astype(np.float64)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(right[m].mean() - conf[m].mean())
    return float(ece)


def rescale(probs: np.ndarray, t: float) -> np.ndarray:
    """``softmax(log p / t)``, row by row."""
    z = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)) / t
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def nll(probs: np.ndarray, targets: np.ndarray) -> float:
    p = np.asarray(probs, np.float64)[np.arange(len(targets)), np.asarray(targets, np.int64)]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())


def fit_temperature(probs: np.ndarray, targets: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature in ``bounds`` that minimises the NLL of ``targets`` (1-D search on log t)."""
    from scipy.optimize import minimize_scalar

    if len(targets) == 0:
        return 1.0
    res = minimize_scalar(lambda s: nll(rescale(probs, float(np.exp(s))), targets),
                          bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))
