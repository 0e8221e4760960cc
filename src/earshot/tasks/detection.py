"""Sound event detection: frame probabilities at a known hop, a clip score, and decoded event lists.

Training mixes three kinds of clip in one batch (seed 001, DCASE 2019 Task 4):

- **weak** clips (clip labels only): binary cross-entropy on the clip logits;
- **strong** clips (events with onsets and offsets; a strong clip without events is a real
  all-negative clip): binary cross-entropy on the frame logits (``strong_loss='frame'``) or,
  as the seed's "synthetic with clipwise loss", on the clip logits;
- **unlabelled** clips: no supervised loss; with ``mean_teacher`` they feed the consistency loss
  (:mod:`earshot.training.mean_teacher`).

A clip's kind is ``Clip.annotation``; without it, a clip with events is strong and one without
is weak. Decoding (thresholds, median filter, hysteresis) is :mod:`earshot.tasks.events`; its
parameters live in the checkpoint and are tuned on the validation clips.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from earshot.data.manifest import Clip, SkipReport
from earshot.errors import ConfigError
from earshot.tasks.base import Crop
from earshot.tasks.events import DecodeParams, class_gap, decode_events, event_roll
from earshot.tasks.tagging import TaggingTask

if TYPE_CHECKING:
    import torch


KINDS = ("weak", "strong", "unlabelled")
NO_TAG = "(no event)"


def clip_kind(clip: Clip) -> str:
    """``weak``, ``strong`` or ``unlabelled`` (see the module docstring)."""
    if clip.annotation is not None:
        return clip.annotation
    return "strong" if clip.events else "weak"


def clip_tags(clip: Clip) -> list[str]:
    """The classes present in a clip: its weak labels and the labels of its events."""
    return sorted(set(clip.labels) | {e.label for e in clip.events})


class DetectionTask(TaggingTask):
    """Multi-label frame-level detection with a clip-level tagging output; the clip level (tag
    thresholds tuned on validation, decoding of tags, judging) is the tagging task's."""

    name = "detection"
    verb = "detect"  # the CLI verb that uses this task's checkpoints
    frame_outputs = True  # scoring needs each clip's frame probabilities
    monitor = "frame_mAP"  # validation frame-level mAP on strong clips (clip mAP when there are none)
    headline = ("event_f1_macro", "segment_f1_micro", "psds1", "event_er", "mAP")

    def __init__(self, labels: Sequence[str], threshold: float = 0.5, thresholds: Sequence[float] | None = None,
                 train_on: Sequence[str] = KINDS, strong_loss: str = "frame", decode: dict[str, Any] | None = None,
                 tune_thresholds: bool = True, decode_tuning: str = "auto", **_: Any):
        super().__init__(labels, threshold, thresholds, tune_thresholds=tune_thresholds)
        if decode_tuning not in ("auto", "per_class", "shared"):
            raise ConfigError(f"task.decode_tuning: {decode_tuning!r} is not one of ['auto', 'per_class', 'shared']")
        self.decode_tuning = decode_tuning
        bad = set(train_on) - set(KINDS)
        if bad:
            raise ConfigError(f"task.train_on: {sorted(bad)} not among {list(KINDS)}")
        if strong_loss not in ("frame", "clip"):
            raise ConfigError(f"task.strong_loss: {strong_loss!r} is not one of ['frame', 'clip']")
        self.train_on = [k for k in KINDS if k in train_on]
        self.strong_loss = strong_loss
        self.decoding = DecodeParams.from_dict(dict(decode or {}), len(self.labels))

    # --- data -----------------------------------------------------------------------------------
    def admit(self, clips: Sequence[Clip], where: str, skipped: SkipReport) -> list[Clip]:
        """Training keeps the clip kinds of ``train_on``; evaluation scores strong clips (weak ones
        count for tagging mAP only). Unknown labels are skipped and reported."""
        out = []
        for c in clips:
            unknown = [lab for lab in clip_tags(c) if lab not in self.index]
            if unknown:
                skipped.add(c.path, f"{where} clip label(s) {unknown} absent from the training labels")
                continue
            kind = clip_kind(c)
            if where == "train" and kind not in self.train_on:
                continue  # not an error: the recipe trains on other kinds
            if where != "train" and kind == "unlabelled":
                continue
            out.append(c)
        return out

    def _multi_hot(self, labels: Sequence[str]) -> np.ndarray:
        y = np.zeros(len(self.labels), np.float32)
        y[[self.index[lab] for lab in labels]] = 1.0
        return y

    def target(self, clip: Clip, crop: Crop | None = None) -> Any:
        """Without a crop: the clip's multi-hot tags ``(C,)``. With one: ``target`` (the tags of the
        crop: a strong clip's events that overlap it), ``frame_target`` ``(T', C)`` at the crop's
        frame hop, and ``kind`` (0 weak, 1 strong, 2 unlabelled)."""
        if crop is None:
            return self._multi_hot(clip_tags(clip))
        kind = clip_kind(clip)
        n = max(1, int(round(crop.duration / crop.frame_hop))) if crop.frame_hop > 0 else 1
        if kind == "strong":
            end = crop.start + crop.duration
            inside = [(e.onset - crop.start, e.offset - crop.start, e.label) for e in clip.events
                      if e.offset > crop.start and e.onset < end]
            tags = self._multi_hot(sorted({lab for _, _, lab in inside}))
            frames = event_roll(inside, self.labels, n, crop.frame_hop) if crop.frame_hop > 0 else np.zeros((n, len(self.labels)), np.float32)
        else:
            tags = self._multi_hot(clip.labels) if kind == "weak" else np.zeros(len(self.labels), np.float32)
            frames = np.zeros((n, len(self.labels)), np.float32)
        return {"target": tags, "frame_target": frames, "kind": np.int64(KINDS.index(kind))}

    def sampling_keys(self, clip: Clip) -> list[str]:
        return clip_tags(clip) or [NO_TAG]

    def prepare(self, train: Sequence[Clip]) -> None:
        if not train:
            raise ConfigError(f"no training clip of the kinds in task.train_on={self.train_on}")

    # --- model outputs --------------------------------------------------------------------------
    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Clip-wise BCE on weak clips; on strong clips, frame-wise BCE plus clip-wise BCE against the
        crop's tags (or clip-wise only, with ``strong_loss='clip'``); nothing on unlabelled clips.
        Averaged over the labelled clips of the batch, weighted by ``weight``."""
        import torch
        from torch.nn import functional as F

        clip_logits = outputs["clip_logits"].float()  # (B, C)
        target = batch["target"].float()
        clip_loss = F.binary_cross_entropy_with_logits(clip_logits, target, reduction="none").mean(1)  # (B,)
        kind = batch.get("kind")
        if kind is None:  # validation windows: clip tags only
            return clip_loss.mean()
        per = clip_loss
        strong = kind == 1
        if self.strong_loss == "frame" and bool(strong.any()):
            fl = outputs["frame_logits"].float()  # (B, T', C)
            ft = _align(batch["frame_target"].float(), fl.shape[1])
            frame_loss = F.binary_cross_entropy_with_logits(fl, ft, reduction="none").mean((1, 2))
            per = torch.where(strong, frame_loss + clip_loss, clip_loss)  # the clip term speeds up learning
        labelled = (kind != 2).float()
        w = batch.get("weight")
        w = labelled * (w.float() if w is not None else 1.0)
        return (per * w).sum() / w.sum().clamp_min(1.0)

    def frame_probabilities(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, T', C)`` frame probabilities."""
        return outputs["frame_logits"].float().sigmoid()

    # --- decisions ------------------------------------------------------------------------------
    def events(self, frame_probs: np.ndarray, hop: float, clip_probs: np.ndarray | None = None
               ) -> list[tuple[float, float, str, float]]:
        """Events ``(onset, offset, label, confidence)`` decoded from frame probabilities ``(T, C)``."""
        return decode_events(frame_probs, hop, self.labels, self.decoding, clip_probs)

    #: ``decode_tuning=auto`` tunes per class only when every class has this many validation events
    PER_CLASS_MIN_EVENTS = 50
    TUNE_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    TUNE_MEDIANS = (0.1, 0.25, 0.5)
    #: ``low = high * ratio`` for each ratio here (1 is a plain threshold, no hysteresis)
    TUNE_LOW_RATIOS: tuple[float, ...] = (0.5,)
    #: merge gaps in seconds; ``None`` keeps the configured ``task.decode.merge_gap``
    TUNE_MERGE_GAPS: tuple[float | None, ...] = (None,)

    def decode_grid(self) -> list[tuple[float, float, float, float | None]]:
        """The tuning grid's settings ``(threshold, median, low ratio, merge gap)``, ordered with the
        threshold varying fastest (``decode_select='plateau'`` averages neighbouring thresholds)."""
        return [(thr, med, r, g) for med in self.TUNE_MEDIANS for r in self.TUNE_LOW_RATIOS
                for g in self.TUNE_MERGE_GAPS for thr in self.TUNE_THRESHOLDS]

    def _apply(self, settings: Sequence[tuple[float, float, float, float | None]],
               base_gap: float | list[float]) -> None:
        """Set each class's decoding from its grid setting (one per class); a ``None`` gap is
        ``base_gap``'s (the configured merge gap). One gap for every class stays one number."""
        gaps = [class_gap(base_gap, c) if g is None else g for c, (_, _, _, g) in enumerate(settings)]
        self.decoding.high = [float(t) for t, _, _, _ in settings]
        self.decoding.low = [float(t) * float(r) for t, _, r, _ in settings]
        self.decoding.median_seconds = [float(m) for _, m, _, _ in settings]
        self.decoding.merge_gap = float(gaps[0]) if len(set(gaps)) == 1 else [float(g) for g in gaps]

    def tune_clips(self, clips: Sequence[Clip], probs: np.ndarray, frames: Sequence[np.ndarray] | None,
                   hop: float) -> dict[str, Any]:
        """Tag thresholds, then the hysteresis thresholds (``low = high / 2`` unless ``TUNE_LOW_RATIOS``
        says otherwise), median window (and merge gap, with ``TUNE_MERGE_GAPS``) that maximise
        event-based F1 on the strong validation clips (a grid search): each class's own F1
        (``per_class``), or the macro F1 with one setting for every class (``shared``; see
        ``decode_tuning``)."""
        tuned = self.tune(probs, np.stack([self.target(c) for c in clips]))
        strong = [i for i, c in enumerate(clips) if clip_kind(c) == "strong"]
        if not self.tune_thresholds or frames is None or not strong:
            return tuned
        ref = {clips[i].id: [(e.onset, e.offset, e.label) for e in clips[i].events] for i in strong}
        settings = self.decode_grid()
        f1 = self._grid_f1(ref, [clips[i].id for i in strong], [frames[i] for i in strong], hop, settings)
        counts = Counter(e[2] for evs in ref.values() for e in evs)
        fewest = min(counts.get(lab, 0) for lab in self.labels)
        per_class = self.decode_tuning == "per_class" or (
            self.decode_tuning == "auto" and fewest >= self.PER_CLASS_MIN_EVENTS)
        seen = (f1 >= 0).all(axis=0)  # classes with validation events; the others keep their decoding
        if seen.any():
            if per_class:
                score = self._select_score(f1)
                best = [settings[int(np.argmax(score[:, c]))] for c in range(len(self.labels))]
            else:
                best = [settings[int(np.argmax(self._select_score(f1[:, seen].mean(axis=1, keepdims=True))))]] * len(
                    self.labels)
            current = [(h, m, lo / h if h > 0 else 1.0, self.decoding.gap(c)) for c, (h, lo, m) in
                       enumerate(zip(self.decoding.high, self.decoding.low, self.decoding.median_seconds))]
            self._apply([b if ok else cur for b, ok, cur in zip(best, seen, current)], self.decoding.merge_gap)
        tuned["decode"] = self.decoding.to_dict()
        tuned["decode_tuning"] = "per_class" if per_class else "shared"
        return tuned

    #: how a grid setting is chosen: ``best``, its own F1; ``plateau``, the mean F1 of it and its
    #: neighbouring thresholds (same median window), which prefers the middle of a flat optimum
    decode_select = "best"

    #: what the grid maximises for each class: ``event``, its event-based F1; ``event+segment``, the mean
    #: of its event-based and segment-based (1 s) F1 (``benchmarks/sed_retune.py --objectives``)
    decode_objective = "event"

    def _select_score(self, f1: np.ndarray) -> np.ndarray:
        """The criterion ``decode_select`` maximises over the grid, from the F1 ``(setting, class)``
        of settings ordered median-major, threshold-minor."""
        if self.decode_select == "best":
            return f1
        n_thr = len(self.TUNE_THRESHOLDS)
        grid = f1.reshape(-1, n_thr, f1.shape[1])  # (median x ratio x gap, threshold, class)
        padded = np.pad(grid, ((0, 0), (1, 1), (0, 0)), constant_values=np.nan)
        smooth = np.nanmean(np.stack([padded[:, :-2], padded[:, 1:-1], padded[:, 2:]]), axis=0)
        return smooth.reshape(f1.shape)

    def _grid_f1(self, ref: dict[str, list[tuple[float, float, str]]], ids: Sequence[str], frames: Sequence[np.ndarray],
                 hop: float, settings: Sequence[tuple[float, float, float, float | None]]) -> np.ndarray:
        """Per-class event F1 ``(setting, class)`` of each setting of :meth:`decode_grid` applied to every
        class (averaged with its segment F1 when ``decode_objective`` says so): 0 for a class with
        reference events and no output (sed_eval leaves that undefined), -1 for a class with no
        reference events. The decoding is restored."""
        from earshot.metrics.detection import sed_eval_report

        n = len(self.labels)
        present = {e[2] for evs in ref.values() for e in evs}
        out = np.full((len(settings), n), -1.0)
        saved = (list(self.decoding.high), list(self.decoding.low), list(self.decoding.median_seconds),
                 self.decoding.merge_gap)
        kinds = self.decode_objective.split("+")  # "event" or "event+segment": the F1s averaged per class
        try:
            for s, setting in enumerate(settings):
                self._apply([setting] * n, saved[3])
                est = {cid: [e[:3] for e in self.events(f, hop)] for cid, f in zip(ids, frames)}
                report = sed_eval_report(ref, est, self.labels)
                out[s] = [-1.0 if lab not in present else
                          float(np.mean([_f1_or_zero(report[f"per_class_{k}_f1"][lab]) for k in kinds]))
                          for lab in self.labels]
        finally:
            self.decoding.high, self.decoding.low, self.decoding.median_seconds, self.decoding.merge_gap = saved
        return out

    # --- scores (clip-level evaluate, tune, decode and judge: TaggingTask's) ---------------------
    def validation_report(self, clips: Sequence[Clip], probs: np.ndarray, frames: Sequence[np.ndarray],
                          hop: float) -> dict[str, Any]:
        """What training validates on every epoch (cheap): clip tagging metrics, and ``frame_mAP``,
        the macro average precision of frame probabilities against the strong clips' frame
        targets. Without strong validation clips, ``frame_mAP`` is the clip mAP."""
        from sklearn.metrics import average_precision_score

        out = self.evaluate(probs, np.stack([self.target(c) for c in clips]))
        strong = [i for i, c in enumerate(clips) if clip_kind(c) == "strong"]
        out["frame_mAP"] = out["mAP"]
        if strong:
            y = np.concatenate([event_roll([(e.onset, e.offset, e.label) for e in clips[i].events], self.labels,
                                           len(frames[i]), hop) for i in strong])
            p = np.concatenate([frames[i] for i in strong])
            ok = (y.sum(0) > 0) & (y.sum(0) < len(y))
            if ok.any():
                out["frame_mAP"] = float(np.mean([average_precision_score(y[:, c], p[:, c])
                                                  for c in np.flatnonzero(ok)]))
        return out

    def score_clips(self, clips: Sequence[Clip], probs: np.ndarray, frames: Sequence[np.ndarray] | None,
                    hop: float) -> dict[str, Any]:
        """Tagging mAP on every clip; on the strong clips, event-based and segment-based F1 and ER
        (sed_eval) and PSDS1/PSDS2 (sed_scores_eval)."""
        from earshot.metrics.detection import psds_report, sed_eval_report

        out = self.evaluate(probs, np.stack([self.target(c) for c in clips]))
        out = {k: v for k, v in out.items() if k in ("n_clips", "roc_auc_macro", "mAP", "f1_macro", "per_class_ap")}
        out["tag_thresholds"] = {lab: float(t) for lab, t in zip(self.labels, self.thresholds)}
        strong = [i for i, c in enumerate(clips) if clip_kind(c) == "strong"]
        out["n_strong_clips"] = len(strong)
        out["decode"] = self.decoding.to_dict()
        out["frame_hop_seconds"] = hop
        if frames is None or not strong:
            return out
        ref = {clips[i].id: [(e.onset, e.offset, e.label) for e in clips[i].events] for i in strong}
        est = {clips[i].id: self.events(frames[i], hop) for i in strong}
        out.update(sed_eval_report(ref, {k: [e[:3] for e in v] for k, v in est.items()}, self.labels))
        out.update(psds_report(ref, {clips[i].id: frames[i] for i in strong}, hop, self.labels,
                               {clips[i].id: clips[i].duration for i in strong}))
        out["events"] = {Path(clips[i].path).name: [list(e) for e in est[clips[i].id]] for i in strong}
        out["support"] = {lab: sum(e[2] == lab for v in ref.values() for e in v) for lab in self.labels}
        return out

    def plots(self, report: dict[str, Any], out_dir: Path, prefix: str = "") -> dict[str, Path]:
        from earshot.report.plots import class_f1_plot

        if "per_class_event_f1" not in report:
            return {}
        return {"class_event_f1": class_f1_plot(report, out_dir / f"{prefix}class_event_f1.png")}

    def per_class_table(self, report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        ev, seg = report.get("per_class_event_f1", {}), report.get("per_class_segment_f1", {})
        ap, sup = report.get("per_class_ap", {}), report.get("support", {})
        return (["class", "events", "event F1", "segment F1", "tagging AP"],
                [[lab, sup.get(lab), ev.get(lab), seg.get(lab), ap.get(lab)] for lab in self.labels])

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "labels": self.labels, "threshold": self.threshold,
                "thresholds": [float(t) for t in self.thresholds], "train_on": self.train_on,
                "strong_loss": self.strong_loss, "decode": self.decoding.to_dict(),
                "tune_thresholds": self.tune_thresholds, "decode_tuning": self.decode_tuning}


def _align(frame_target: torch.Tensor, n: int) -> torch.Tensor:
    """Frame targets ``(B, T, C)`` resampled (nearest) to the model's ``n`` frames."""
    from torch.nn import functional as F

    if frame_target.shape[1] == n:
        return frame_target
    return F.interpolate(frame_target.transpose(1, 2), size=n, mode="nearest").transpose(1, 2)


def _f1_or_zero(f1: float | None) -> float:
    """A class's F1 from sed_eval, 0 where it is undefined (reference events and no output)."""
    return 0.0 if f1 is None or np.isnan(f1) else float(f1)
