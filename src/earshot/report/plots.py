"""Figures written with every evaluation: class-wise accuracy and the confusion matrix (classification),
per-class ROC-AUC and AP (tagging), per-class event and segment F1 and one picture per clip (detection)."""

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


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def class_f1_plot(report: dict[str, Any], path: str | Path, title: str = "Per-class event-based and segment-based F1"
                  ) -> Path:
    """Paired horizontal bars of each class's event-based and segment-based F1, sorted by event F1."""
    ev, seg = report["per_class_event_f1"], report["per_class_segment_f1"]
    labels = sorted(ev, key=lambda k: ev[k] or 0.0)
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.36 * len(labels) + 1)))
    ax.barh(y + 0.2, [ev[k] or 0.0 for k in labels], 0.4, color="#3b7dd8",
            label=f"event F1 (macro {_num(report['event_f1_macro'])})")
    ax.barh(y - 0.2, [seg[k] or 0.0 for k in labels], 0.4, color="#e0923a",
            label=f"segment F1 (micro {_num(report['segment_f1_micro'])})")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def event_plot(logmel: np.ndarray, logmel_hop: float, frames: np.ndarray, hop: float, labels: list[str],
               reference: list[tuple[float, float, str]], estimated: list[tuple[float, float, str]],
               path: str | Path, title: str = "") -> Path:
    """Three panels on one time axis: the log-mel ``(T, F)``, the frame probabilities ``(T', C)``
    per class, and the reference (top half of each row) and predicted (bottom half) events as bars."""
    duration = max(len(logmel) * logmel_hop, len(frames) * hop)
    colours = plt.get_cmap("tab20")(np.arange(len(labels)) % 20)
    fig, axes = plt.subplots(3, 1, figsize=(11, 2.2 + 0.25 * len(labels) + 4.4), sharex=True,
                             gridspec_kw={"height_ratios": [2, 2, max(1.0, 0.25 * len(labels))]})
    axes[0].imshow(logmel.T, origin="lower", aspect="auto", extent=(0, len(logmel) * logmel_hop, 0, logmel.shape[1]),
                   cmap="magma")
    axes[0].set_ylabel("mel band")
    axes[0].set_title(title, fontsize=9)
    t = (np.arange(len(frames)) + 0.5) * hop
    for c, lab in enumerate(labels):
        if frames[:, c].max() >= 0.1 or any(e[2] == lab for e in reference):
            axes[1].plot(t, frames[:, c], color=colours[c], lw=1, label=lab)
    axes[1].set_ylim(0, 1)
    axes[1].set_ylabel("probability")
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(fontsize=6, ncol=4, loc="upper right")
    ax = axes[2]
    row = {lab: i for i, lab in enumerate(labels)}
    for events, y0, alpha in ((reference, 0.5, 1.0), (estimated, 0.05, 0.6)):
        for on, off, lab in events:
            ax.broken_barh([(on, off - on)], (row[lab] + y0, 0.45), color=colours[row[lab]], alpha=alpha)
    ax.set_yticks(np.arange(len(labels)) + 0.5, labels, fontsize=7)
    ax.set_ylim(0, len(labels))
    ax.set_xlim(0, duration)
    ax.set_xlabel("time (s); in each row: reference above, predicted below")
    return _save(fig, path)
