"""Load a checkpoint and predict files or arrays of any length, rate and channel count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from earshot.atomic import atomic_write_text
from earshot.audio.io import list_audio, load_audio  # noqa: F401 (list_audio re-exported)
from earshot.checkpoint import load_checkpoint
from earshot.data.loading import AudioReader, WindowDataset, check_clips, collate_windows
from earshot.data.manifest import Clip, SkipReport
from earshot.data.windows import pool_windows, stitch_clips
from earshot.errors import DataError, EarshotError
from earshot.inference.results import Detection, Prediction, WindowScores
from earshot.inference.windowed import WindowedInference
from earshot.tasks import Task


class Predictor(WindowedInference):
    """Windowed inference with a trained model in PyTorch; build with :meth:`load` or
    :func:`earshot.load`. Files of any length are streamed (see :mod:`earshot.inference.windowed`)."""

    def __init__(self, model: torch.nn.Module, task: Task, meta: dict[str, Any], device: str | None = None,
                 batch_size: int = 64, precision: str = "auto", fold_batchnorm: bool = False):
        """``fold_batchnorm`` folds the model's BatchNorms into their convolutions, in place: for a
        model only this predictor uses (:meth:`load` does it), never one that trains further."""
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.precision = resolve_precision(precision, self.device)
        self.model = model.to(self.device).eval()
        if hasattr(model, "fast_layout"):  # channels_last for most 2-D CNNs; the same outputs, faster
            if fold_batchnorm:
                model.fold_batchnorm()
            model.fast_layout()
        self.task = task
        self.meta = meta
        self.batch_size = batch_size
        inf = meta["inference"]
        self.sample_rate: int = model.sample_rate
        self.win = int(round(inf["clip_seconds"] * self.sample_rate))
        self.hop = max(1, int(round(inf["hop_seconds"] * self.sample_rate)))
        self.pooling: str = inf["pooling"]
        self.fixed_input = model.input_samples is not None
        self.min_samples = max(1, model.input.min_samples)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, precision: str = "auto") -> "Predictor":
        ck = load_checkpoint(path)
        return cls(ck.model, ck.task, ck.meta, device, precision=precision, fold_batchnorm=True)

    @property
    def frame_hop(self) -> float:
        """Seconds between the model's output frames."""
        return self.model.frame_hop_seconds

    @torch.no_grad()
    def _window_outputs(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """Clip probabilities ``(W, C)`` of each window and, for frame tasks, frames ``(W, T', C)``.
        In bf16 the network runs under autocast; the log-mel front-end and the outputs stay float32."""
        if self.device.type == "cuda":  # pinned memory: the copy overlaps the previous batch's work
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        else:
            batch = batch.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.model(batch)
        frames = self.task.frame_probabilities(out).cpu().numpy() if self.task.frame_outputs else None
        return self.task.probabilities(out).cpu().numpy(), frames

    def window_outputs(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self._window_outputs(torch.from_numpy(np.ascontiguousarray(windows)))

    def predict_clips(self, clips: Sequence[Clip], skipped: SkipReport | None = None) -> tuple[np.ndarray, list[Clip]]:
        """Pooled probabilities ``(N, C)`` for manifest clips that can be read; the rest go to ``skipped``."""
        probs, _, kept = self.clip_outputs(clips, skipped)
        return probs, kept

    def clip_outputs(self, clips: Sequence[Clip], skipped: SkipReport | None = None
                     ) -> tuple[np.ndarray, list[np.ndarray] | None, list[Clip]]:
        """Pooled clip probabilities ``(N, C)``, each clip's stitched frame probabilities ``(T, C)``
        (for frame tasks, else None), and the clips that could be read."""
        kept = check_clips(clips, self.sample_rate, skipped=skipped)
        ds = WindowDataset(kept, AudioReader(self.sample_rate), None, self.win, self.hop)
        loader = torch.utils.data.DataLoader(ds, batch_size=max(1, self.batch_size // 8), collate_fn=collate_windows)
        probs, idx, frames, starts = [], [], [], []
        for b in loader:
            for i in range(0, len(b["audio"]), self.batch_size):
                p, f = self._window_outputs(b["audio"][i : i + self.batch_size])
                probs.append(p)
                if f is not None:
                    frames.extend(f)
            idx.append(b["clip_index"].numpy())
            starts.append(b["start"].numpy())
        if not probs:
            return np.zeros((0, len(self.labels))), None, []
        index = np.concatenate(idx)
        clip_probs = pool_windows(np.concatenate(probs), index, len(kept), self.pooling)
        if not self.task.frame_outputs:
            return clip_probs, None, kept
        timelines = stitch_clips(frames, np.concatenate(starts), index, kept, self.sample_rate, self.frame_hop)
        return clip_probs, timelines, kept

    def tune(self, clips: Sequence[Clip], skipped: SkipReport | None = None) -> dict[str, Any]:
        """Fit the task's decision state (thresholds, decoding) on labelled validation clips."""
        usable = self.task.admit(clips, "validation", skipped if skipped is not None else SkipReport())
        probs, frames, kept = self.clip_outputs(usable, skipped)
        return self.task.tune_clips(kept, probs, frames, self.frame_hop) if kept else {}

    def evaluate(self, clips: Sequence[Clip], skipped: SkipReport | None = None,
                 predictions: str | Path | None = None, pictures: str | Path | None = None) -> dict[str, Any]:
        """The task's metrics on labelled clips; clips the task cannot score go to ``skipped``.

        With ``predictions``, each clip's labels and decoded prediction are written there as JSONL.
        With ``pictures`` (a folder), a frame task draws its first clips' log-mel, frame
        probabilities and events there.
        """
        report = skipped if skipped is not None else SkipReport()
        usable = self.task.admit(clips, "evaluation", report)
        if not usable:
            raise DataError("manifest", "no clip has a label the checkpoint knows")
        probs, frames, kept = self.clip_outputs(usable, report)
        if not kept:
            raise DataError("manifest", "no clip could be read")
        targets = np.stack([self.task.target(c) for c in kept])
        out = self.task.score_clips(kept, probs, frames, self.frame_hop)
        if frames is not None and pictures is not None:
            out["pictures"] = [str(f) for f in write_event_pictures(self, kept, frames, out, pictures)]
        out["task"] = self.task.name
        out["headline"] = list(self.task.headline)
        out["skipped"] = len(report)
        if predictions is not None:
            write_predictions(predictions, kept, probs, targets, self.task)
        return out


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16``; ``auto`` picks bf16 on CPUs that run it natively (AVX-512-BF16 or AMX),
    fp32 elsewhere. On a CUDA GPU ``auto`` is fp32 (with PyTorch's default TF32 convolutions): on an
    H100 bf16 autocast made 21 of the 23 registered models slower at inference and was at most 1.16x
    faster in training at the recipes' batch sizes, while FSDD lost half a point (benchmarks/RESULTS.md,
    2026-11-23). ``bf16`` still asks for it."""
    if precision not in ("auto", "fp32", "bf16"):
        raise EarshotError(f"precision {precision!r}: use auto, fp32 or bf16")
    if precision != "auto":
        return precision
    if device.type != "cpu":
        return "fp32"
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return "bf16" if native else "fp32"


def write_predictions(path: str | Path, clips: Sequence[Clip], probs: np.ndarray, targets: np.ndarray, task: Task,
                      top_k: int = 5) -> None:
    """One JSON line per clip: id, path, true labels, the decoded prediction with scores, whether it
    is right and how confident it was (the task judges both)."""
    lines = []
    for c, p, t in zip(clips, probs, targets):
        correct, confidence = task.judge(p, t)
        lines.append(json.dumps({"id": c.id, "path": c.path, "labels": c.labels,
                                 "top": [[lab, round(s, 6)] for lab, s in task.decode(p, top_k)],
                                 "correct": correct, "confidence": round(confidence, 6)}) + "\n")
    atomic_write_text(path, "".join(lines))


def write_event_pictures(pred: Predictor, clips: Sequence[Clip], frames: Sequence[np.ndarray], report: dict[str, Any],
                         out_dir: str | Path, n: int = 8) -> list[Path]:
    """One PNG per clip (the first ``n`` with reference events): log-mel, frame probabilities, and
    reference and decoded events on one time axis."""
    from earshot.features.frontends import LogMel, LogMelConfig
    from earshot.report.plots import event_plot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sr = pred.sample_rate
    mel = LogMel(LogMelConfig(sample_rate=sr, n_fft=1024, hop_length=sr // 100, n_mels=64))
    est = report.get("events", {})
    files = []
    for c, f in [(c, f) for c, f in zip(clips, frames) if c.events][:n]:
        x = load_audio(c.path, sr)[0]
        with torch.no_grad():
            lm = mel(torch.from_numpy(x[None]))[0].numpy()
        ref = [(e.onset, e.offset, e.label) for e in c.events]
        path = out / f"{Path(c.id).name}.png"
        files.append(event_plot(lm, 0.01, f, pred.frame_hop, pred.labels, ref,
                                [tuple(e[:3]) for e in est.get(Path(c.path).name, [])], path, title=c.id))
    return files


def load(path: str | Path, device: str | None = None) -> Predictor:
    """``earshot.load("run/checkpoints/best.ckpt").predict("dog.wav")``."""
    return Predictor.load(path, device)


__all__ = ["Detection", "Prediction", "Predictor", "WindowScores", "list_audio", "load"]
