"""The classical baseline every model should beat: per-band log-mel statistics + logistic regression.

Each clip becomes 4 x 64 numbers: the mean, standard deviation and maximum of every mel band of
its log-mel (16 kHz, 64 bands, 10 ms hop), and the standard deviation of the band's frame-to-frame
difference (how fast it changes). A standardiser and an L2-regularised logistic regression
(multinomial for classification, one per class for tagging) are fitted on the training and
validation clips; the task scores the test clips with its own metrics. It takes seconds, needs no
tuning, and on a few dozen clips per class it is hard to beat: ``earshot train`` runs it beside
small datasets (see :func:`small_data`).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch

from earshot.audio.io import load_audio
from earshot.data.manifest import Clip, SkipReport
from earshot.errors import ConfigError, EarshotError
from earshot.features.frontends import LogMel, LogMelConfig

SAMPLE_RATE = 16000
MAX_SECONDS = 30.0  # longer clips are summarised from their first 30 s


def clip_features(x: np.ndarray, logmel: LogMel) -> np.ndarray:
    """``(4F,)``: per-band mean, std, max of the log-mel and std of its first difference."""
    n = max(len(x), logmel.config.n_fft)
    x = np.pad(x[: int(MAX_SECONDS * logmel.config.sample_rate)], (0, max(0, n - len(x))))
    with torch.no_grad():
        m = logmel(torch.from_numpy(np.ascontiguousarray(x, np.float32))[None])[0].numpy()  # (T, F)
    d = np.diff(m, axis=0) if len(m) > 1 else np.zeros_like(m)
    return np.concatenate([m.mean(0), m.std(0), m.max(0), d.std(0)]).astype(np.float32)


def extract(clips: Sequence[Clip], skipped: SkipReport) -> tuple[np.ndarray, list[Clip]]:
    """Features ``(N, 4F)`` of the clips that decode; the others go to ``skipped``."""
    logmel = LogMel(LogMelConfig(sample_rate=SAMPLE_RATE))
    feats, kept = [], []
    for c in clips:
        try:
            x, _ = load_audio(c.path, SAMPLE_RATE)
        except EarshotError as e:
            skipped.add(c.path, f"baseline: {e}")
            continue
        feats.append(clip_features(x, logmel))
        kept.append(c)
    return (np.stack(feats) if feats else np.zeros((0, 4 * logmel.config.n_mels), np.float32)), kept


class LogMelStatsBaseline:
    """Standardised log-mel statistics -> logistic regression, over a task's labels."""

    def __init__(self, task: Any, c: float = 1.0):
        if task.name not in ("classification", "tagging"):
            raise ConfigError(f"the baseline scores clips: task {task.name!r} is not classification or tagging")
        self.task = task
        self.c = c

    def fit(self, x: np.ndarray, targets: np.ndarray) -> "LogMelStatsBaseline":
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        lr = LogisticRegression(C=self.c, max_iter=2000)
        if self.task.name == "tagging":
            self.present = np.flatnonzero((targets.sum(0) > 0) & (targets.sum(0) < len(targets)))
            self.clf = make_pipeline(StandardScaler(), OneVsRestClassifier(lr)).fit(x, targets[:, self.present])
        else:
            self.clf = make_pipeline(StandardScaler(), lr).fit(x, targets)
        return self

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """``(N, C)`` over all of the task's labels (a class never seen in training gets 0)."""
        p = self.clf.predict_proba(x)
        out = np.zeros((len(x), len(self.task.labels)))
        cols = self.present if self.task.name == "tagging" else self.clf.classes_
        out[:, cols] = p
        return out


def run_baseline(task: Any, train: Sequence[Clip], test: Sequence[Clip], skipped: SkipReport | None = None
                 ) -> dict[str, Any]:
    """Fit on ``train`` and score ``test`` with the task's metrics; ``wall_seconds`` included."""
    skipped = skipped if skipped is not None else SkipReport()
    t0 = time.time()
    x_tr, train_kept = extract(task.admit(train, "train", skipped), skipped)
    x_te, test_kept = extract(task.admit(test, "test", skipped), skipped)
    if not train_kept or not test_kept:
        raise ConfigError("the baseline needs decodable training and test clips")
    y_tr = np.stack([task.target(c) for c in train_kept])
    y_te = np.stack([task.target(c) for c in test_kept])
    model = LogMelStatsBaseline(task).fit(x_tr, y_tr)
    report = task.evaluate(model.probabilities(x_te), y_te)
    report.update(model="logmel_stats_logreg", n_train=len(train_kept), n_clips=len(test_kept),
                  wall_seconds=time.time() - t0)
    return report


def small_data(n_train: int, n_classes: int, per_class: int = 50) -> bool:
    """Fewer than ``per_class`` training clips per class on average: where a from-scratch CNN can
    lose to the baseline, so ``earshot train`` scores the baseline beside it."""
    return n_classes > 0 and n_train < per_class * n_classes


def baseline_for_config(cfg: Any, skipped: SkipReport | None = None) -> dict[str, Any]:
    """``earshot baseline RECIPE``: the recipe's manifest, splits and task, with the baseline as the
    model; it trains on train + validation and is scored on test (else validation)."""
    from earshot.data.manifest import read_manifest
    from earshot.training.run import build_task, ensure_manifest, split_clips

    skipped = skipped if skipped is not None else SkipReport()
    splits = split_clips(read_manifest(ensure_manifest(cfg)), cfg)
    task, kept = build_task(cfg, splits, skipped)
    test, split = (kept.test, "test") if kept.test else (kept.val, "val")
    report = run_baseline(task, kept.train + (kept.val if kept.test else []), test, skipped)
    report.update(split=split, headline=list(task.headline), task=task.name, skipped=len(skipped))
    return report


def compare_lines(model: dict[str, Any], base: dict[str, Any], metric: str) -> list[str]:
    """Console lines: the baseline beside the model, and what to do when it wins."""
    m, b = model.get(metric), base.get(metric)
    lines = [f"  baseline (log-mel stats + logistic regression, {base['wall_seconds']:.0f} s): {metric} "
             + (f"{b:.4f}" if isinstance(b, float) else "-")]
    if isinstance(m, float) and isinstance(b, float) and b > m:
        lines.append(f"  the baseline beats the model on {metric} ({b:.4f} > {m:.4f}): with this little data try "
                     "frozen embeddings of a pretrained backbone (model.pretrained=..., "
                     "optim.freeze_backbone_epochs=N), or use `earshot baseline`")
    return lines
