"""Datasets that turn clips into batches.

Training batches are random fixed-length crops; evaluation batches are sliding windows whose
predictions are pooled per clip (the seed's "patches"). Batches are dicts:

- ``audio``: float32 ``(B, N)`` waveform at the model's sample rate
- ``target``: int64 ``(B,)`` class index (classification)
- ``weight``: float32 ``(B,)`` per-clip loss weight
- ``clip_index``: int64 ``(B,)`` which clip a window belongs to (evaluation only)
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from earshot.audio.io import fix_length, load_audio
from earshot.data.manifest import Clip, SkipReport
from earshot.errors import AudioError, DataError

log = logging.getLogger(__name__)


class AudioStore:
    """Decoded, resampled mono audio of a set of clips, held in memory.

    Clips that fail to decode are left out and listed in ``skipped``; ``strict`` raises instead.
    """

    def __init__(self, clips: Sequence[Clip], sample_rate: int, strict: bool = False,
                 skipped: SkipReport | None = None, min_samples: int = 0):
        self.sample_rate = sample_rate
        self.skipped = skipped if skipped is not None else SkipReport()
        self.audio: dict[str, np.ndarray] = {}
        self.clips: list[Clip] = []
        for c in clips:
            try:
                x, _ = load_audio(c.path, sample_rate)
            except AudioError as e:
                if strict:
                    raise
                self.skipped.add(c.path, e.reason)
                continue
            if len(x) < min_samples:
                self.skipped.note(c.path, f"shorter than one STFT window ({len(x)} < {min_samples} samples at "
                                          f"{sample_rate} Hz): zero-padded")
            self.audio[c.id] = x
            self.clips.append(c)

    def __getitem__(self, clip_id: str) -> np.ndarray:
        return self.audio[clip_id]

    def seconds(self) -> float:
        return sum(len(x) for x in self.audio.values()) / self.sample_rate


def balanced_sampler(labels: Sequence[str], seed: int = 0) -> torch.utils.data.WeightedRandomSampler:
    """Draws each class equally often on average: weight 1 / (clips of its class)."""
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    w = torch.tensor([1.0 / counts[lab] for lab in labels], dtype=torch.double)
    return torch.utils.data.WeightedRandomSampler(w, len(labels), replacement=True,
                                                  generator=torch.Generator().manual_seed(seed))


def window_starts(n: int, win: int, hop: int) -> list[int]:
    """Start samples of windows of ``win`` every ``hop`` covering ``n`` samples (at least one)."""
    if n <= win:
        return [0]
    starts = list(range(0, n - win + 1, hop))
    if starts[-1] + win < n:  # cover the tail
        starts.append(n - win)
    return starts


class CropDataset(Dataset):
    """Random ``win``-sample crops for training; short clips are placed at a random offset."""

    def __init__(self, clips: Sequence[Clip], store: AudioStore, target: Callable[[Clip], int], win: int,
                 seed: int = 0, augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None):
        self.clips, self.store, self.target, self.win = list(clips), store, target, win
        self.rng = np.random.default_rng(seed)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int | float]:
        c = self.clips[i]
        x = self.store[c.id]
        n = len(x)
        off = int(self.rng.integers(0, n - self.win + 1)) if n >= self.win else -int(self.rng.integers(0, self.win - n + 1))
        y = fix_length(x, self.win, off)
        if self.augment is not None:
            y = self.augment(y, self.rng)
        return {"audio": torch.from_numpy(y), "target": self.target(c), "weight": float(c.weight)}


class WindowDataset(Dataset):
    """Every evaluation window of every clip, flattened; ``clip_index`` says whose it is."""

    def __init__(self, clips: Sequence[Clip], store: AudioStore, target: Callable[[Clip], int] | None,
                 win: int, hop: int):
        self.clips, self.store, self.target, self.win = list(clips), store, target, win
        self.items = [(ci, s) for ci, c in enumerate(self.clips) for s in window_starts(len(store[c.id]), win, hop)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        ci, start = self.items[i]
        c = self.clips[ci]
        out: dict[str, torch.Tensor | int] = {"audio": torch.from_numpy(fix_length(self.store[c.id], self.win, start)),
                                              "clip_index": ci}
        if self.target is not None:
            out["target"] = self.target(c)
        return out


def pool_windows(probs: np.ndarray, clip_index: np.ndarray, n_clips: int, how: str = "mean") -> np.ndarray:
    """Combine window probabilities ``(W, C)`` into clip probabilities ``(n_clips, C)``."""
    out = np.zeros((n_clips, probs.shape[1]), np.float64)
    if how == "mean":
        np.add.at(out, clip_index, probs)
        out /= np.maximum(np.bincount(clip_index, minlength=n_clips), 1)[:, None]
    elif how == "max":
        out[:] = -np.inf
        np.maximum.at(out, clip_index, probs)
    else:
        raise DataError("config", f"unknown eval pooling {how!r} (mean or max)")
    return out
