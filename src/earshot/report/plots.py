"""Figures written with every evaluation: class-wise accuracy and the confusion matrix (classification),
per-class ROC-AUC and AP (tagging)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def class_accuracy_plot(report: dict[str, Any], path: str | Path, title: str = "Class-wise accuracy") -> Path:
    """Horizontal bars of per-class accuracy, sorted, with the overall accuracy marked."""
    items = [(k, v) for k, v in report["per_class_accuracy"].items() if v is not None]
    items.sort(key=lambda kv: kv[1])
    labels = [k for k, _ in items]
    vals = [v for _, v in items]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(items) + 1)))
    ax.barh(range(len(vals)), vals, color="#3b7dd8")
    ax.set_yticks(range(len(vals)), labels, fontsize=8)
    ax.axvline(report["accuracy"], color="#d8453b", linestyle="--", label=f"overall {report['accuracy']:.3f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def confusion_plot(report: dict[str, Any], path: str | Path, normalize: bool = True) -> Path:
    """Confusion matrix (rows = true class), row-normalised by default."""
    cm = np.asarray(report["confusion_matrix"], np.float64)
    labels = report["labels"]
    if normalize:
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(labels)
    size = max(4.0, 0.32 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if cm[i, j] > 0:
                    ax.text(j, i, f"{cm[i, j]:.2f}" if normalize else int(cm[i, j]), ha="center", va="center",
                            fontsize=6, color="white" if cm[i, j] > 0.5 else "black")
    fig.colorbar(im, fraction=0.046)
    return _save(fig, path)


def class_auc_ap_plot(report: dict[str, Any], path: str | Path, title: str = "Per-class ROC-AUC and AP") -> Path:
    """Paired horizontal bars of each class's ROC-AUC and average precision, sorted by AP."""
    labels = [k for k in report["labels"] if report["per_class_ap"].get(k) is not None]
    labels.sort(key=lambda k: report["per_class_ap"][k])
    auc = [report["per_class_auc"][k] for k in labels]
    ap = [report["per_class_ap"][k] for k in labels]
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.36 * len(labels) + 1)))
    ax.barh(y + 0.2, auc, 0.4, color="#3b7dd8", label=f"ROC-AUC (macro {report['roc_auc_macro']:.3f})")
    ax.barh(y - 0.2, ap, 0.4, color="#e0923a", label=f"AP (mAP {report['mAP']:.3f})")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)
