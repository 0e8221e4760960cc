"""Windows over a recording, in numpy alone (no torch, so the ONNX runtime path can use them):
where the windows start, how their clip scores pool and how their frames stitch into one timeline."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from earshot.data.manifest import Clip
from earshot.errors import DataError


def window_starts(n: int, win: int, hop: int) -> list[int]:
    """Start samples of windows of ``win`` every ``hop`` covering ``n`` samples (at least one)."""
    if n <= win:
        return [0]
    starts = list(range(0, n - win + 1, hop))
    if starts[-1] + win < n:  # cover the tail
        starts.append(n - win)
    return starts


def stitch_frames(frames: Sequence[np.ndarray], starts: Sequence[int], sample_rate: int, frame_hop: float,
                  n_samples: int) -> np.ndarray:
    """One clip's frame probabilities ``(T, C)`` from its windows' ``(T', C)`` frames, on the clip's grid
    of one frame every ``frame_hop`` seconds from 0: each window's frames are placed at its start time,
    linearly interpolated onto the grid where that start falls between two grid frames (a 5 s hop is
    78.125 frames of 64 ms), and overlapping frames are averaged; frames past the end of the clip
    (window padding) are dropped."""
    n_total = max(1, int(math.ceil(n_samples / sample_rate / frame_hop - 1e-6)))
    c = frames[0].shape[1]
    acc = np.zeros((n_total, c), np.float64)
    count = np.zeros(n_total, np.float64)
    for f, s in zip(frames, starts):
        pos = s / sample_rate / frame_hop  # the grid position of the window's first frame
        j0 = max(0, int(math.ceil(pos - 1e-6)))
        j1 = min(n_total, int(math.floor(pos + len(f) - 1 + 1e-6)) + 1)
        if j1 <= j0:
            continue
        u = np.arange(j0, j1) - pos  # each grid frame's position within the window
        k = np.clip(np.floor(u + 1e-6).astype(np.int64), 0, len(f) - 1)
        w = np.clip(u - k, 0.0, 1.0)[:, None]
        acc[j0:j1] += (1.0 - w) * f[k] + w * f[np.minimum(k + 1, len(f) - 1)]
        count[j0:j1] += 1
    out = acc / np.maximum(count, 1)[:, None]
    covered = np.flatnonzero(count > 0)
    if len(covered) and covered[-1] < n_total - 1:  # the clip's last partial frame: repeat the one before
        out[covered[-1] + 1 :] = out[covered[-1]]
    return out


def stitch_clips(frames: Sequence[np.ndarray], starts: np.ndarray, clip_index: np.ndarray, clips: Sequence[Clip],
                 sample_rate: int, frame_hop: float) -> list[np.ndarray]:
    """Each clip's timeline ``(T, C)`` (:func:`stitch_frames`) from the frames ``(T', C)`` of all
    windows, their start samples and which clip each belongs to."""
    out = []
    for ci, c in enumerate(clips):
        w = np.flatnonzero(clip_index == ci)
        n = max(1, int(math.ceil(c.duration * sample_rate - 1e-6)))
        out.append(stitch_frames([frames[i] for i in w], starts[w], sample_rate, frame_hop, n))
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
