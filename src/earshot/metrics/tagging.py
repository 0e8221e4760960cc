"""Multi-label metrics from probabilities ``(N, C)`` and multi-hot targets ``(N, C)``, computed with
scikit-learn: ROC-AUC (macro and micro), mAP (macro average precision) and F1 at per-class thresholds.

A class with no positive (or no negative) clip has no AUC or AP; macro averages skip it and the
per-class entry is ``None``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _scorable(targets: np.ndarray) -> np.ndarray:
    """Classes with at least one positive and one negative clip."""
    pos = targets.sum(0)
    return (pos > 0) & (pos < len(targets))


def tune_thresholds(probs: np.ndarray, targets: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per-class threshold that maximises that class's F1 on ``(probs, targets)``; ``default`` where
    a class has no positive clip."""
    from sklearn.metrics import precision_recall_curve  # scikit-learn loads only when scoring (1 s)

    out = np.full(probs.shape[1], default, np.float64)
    for c in range(probs.shape[1]):
        if targets[:, c].sum() == 0:
            continue
        prec, rec, thr = precision_recall_curve(targets[:, c], probs[:, c])
        f1 = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12)
        best = int(np.argmax(f1))
        # halfway to the next lower score: a threshold that is not fitted to one clip's exact score
        lower = probs[:, c][probs[:, c] < thr[best]]
        out[c] = float((thr[best] + lower.max()) / 2) if len(lower) else float(thr[best])
    return out


def tagging_report(probs: np.ndarray, targets: np.ndarray, labels: Sequence[str],
                   thresholds: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """ROC-AUC (macro, micro), mAP, F1 (macro, micro) at ``thresholds``, and per-class AUC, AP, F1."""
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
    probs = np.asarray(probs, np.float64)
    targets = np.asarray(targets, np.int64)
    thr = np.asarray(thresholds, np.float64)
    ok = _scorable(targets)
    pred = (probs >= thr[None, :]).astype(np.int64)
    auc = [float(roc_auc_score(targets[:, c], probs[:, c])) if ok[c] else None for c in range(len(labels))]
    ap = [float(average_precision_score(targets[:, c], probs[:, c])) if ok[c] else None for c in range(len(labels))]
    f1 = f1_score(targets, pred, average=None, zero_division=0.0)
    present = targets.sum(0) > 0
    out: dict[str, Any] = {
        "n_clips": int(len(targets)),
        "roc_auc_macro": float(np.mean([a for a in auc if a is not None])) if any(ok) else None,
        "roc_auc_micro": float(roc_auc_score(targets.ravel(), probs.ravel())) if 0 < targets.sum() < targets.size
        else None,
        "mAP": float(np.mean([a for a in ap if a is not None])) if any(ok) else None,
        "f1_macro": float(np.mean(f1[present])) if present.any() else 0.0,
        "f1_micro": float(f1_score(targets, pred, average="micro", zero_division=0.0)),
        "exact_match": float((pred == targets).all(1).mean()),
        "labels": list(labels),
        "per_class_auc": dict(zip(labels, auc)),
        "per_class_ap": dict(zip(labels, ap)),
        "per_class_f1": {lab: float(v) for lab, v in zip(labels, f1)},
        "thresholds": {lab: float(t) for lab, t in zip(labels, thr)},
        "support": {lab: int(s) for lab, s in zip(labels, targets.sum(0))},
        "negatives_only": int((targets.sum(1) == 0).sum()),
    }
    return out
