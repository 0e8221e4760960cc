"""Single-label metrics from class probabilities ``(N, C)`` and integer targets ``(N,)``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def ranks(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based rank of the true class in each row (1 = top prediction). Ties count against us."""
    true = probs[np.arange(len(targets)), targets]
    return 1 + (probs > true[:, None]).sum(1) + ((probs == true[:, None]).sum(1) - 1)


def accuracy(probs: np.ndarray, targets: np.ndarray) -> float:
    return float((probs.argmax(1) == targets).mean())


def top_k_accuracy(probs: np.ndarray, targets: np.ndarray, k: int) -> float:
    return float((ranks(probs, targets) <= k).mean())


def map_at_k(probs: np.ndarray, targets: np.ndarray, k: int = 3) -> float:
    """Mean average precision at k with one true label per clip (the Kaggle Freesound metric)."""
    r = ranks(probs, targets)
    return float(np.where(r <= k, 1.0 / r, 0.0).mean())


def confusion_matrix(probs: np.ndarray, targets: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``(C, C)``: row = true class, column = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (targets, probs.argmax(1)), 1)
    return cm


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the precision-recall curve (mean precision at each positive); None without positives."""
    n_pos = int(positive.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    hits = positive[order].astype(np.float64)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / n_pos)


def classification_report(probs: np.ndarray, targets: np.ndarray, labels: Sequence[str],
                          ks: Sequence[int] = (1, 3, 5)) -> dict[str, Any]:
    """Accuracy, balanced accuracy, top-k accuracy, MAP@k, per-class accuracy, confusion matrix."""
    probs, targets = np.asarray(probs, np.float64), np.asarray(targets, np.int64)
    cm = confusion_matrix(probs, targets, len(labels))
    support = cm.sum(1)
    per_class = {lab: (float(cm[i, i] / support[i]) if support[i] else None) for i, lab in enumerate(labels)}
    present = [v for v in per_class.values() if v is not None]
    out: dict[str, Any] = {
        "n_clips": int(len(targets)),
        "accuracy": accuracy(probs, targets),
        "balanced_accuracy": float(np.mean(present)) if present else 0.0,
    }
    for k in ks:
        if k <= len(labels) and k > 1:
            out[f"top{k}_accuracy"] = top_k_accuracy(probs, targets, k)
            out[f"map@{k}"] = map_at_k(probs, targets, k)
    ap = {lab: average_precision(probs[:, i], targets == i) for i, lab in enumerate(labels)}
    present_ap = [v for v in ap.values() if v is not None]
    out["mAP"] = float(np.mean(present_ap)) if present_ap else 0.0
    from earshot.metrics.calibration import expected_calibration_error, nll

    onehot = np.eye(len(labels), dtype=np.int64)[targets] if len(targets) else np.zeros((0, len(labels)), np.int64)
    scorable = [i for i in range(len(labels)) if 0 < onehot[:, i].sum() < len(targets)]
    if scorable:  # one-vs-rest ROC-AUC over classes with positives and negatives (seed 003's metric)
        from sklearn.metrics import roc_auc_score

        out["roc_auc_macro"] = float(np.mean([roc_auc_score(onehot[:, i], probs[:, i]) for i in scorable]))
    out["ece"] = expected_calibration_error(probs, targets)
    out["nll"] = nll(probs, targets)
    out["per_class_accuracy"] = per_class
    out["per_class_ap"] = ap
    out["support"] = {lab: int(s) for lab, s in zip(labels, support)}
    out["labels"] = list(labels)
    out["confusion_matrix"] = cm.tolist()
    return out
