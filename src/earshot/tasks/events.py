"""Frame probabilities to event lists: median filter, hysteresis thresholds, minimum duration, gap merging.

The decoding of seed 001 (Kong's DCASE 2019 Task 4 system), with a setting per class where it
matters:

1. **Tagging gate** (optional): a class is decoded in a clip only if its clip probability reaches
   ``tag_threshold``.
2. **Median filter** over time, with a window in seconds per class (a door slam wants a short
   one, speech a long one).
3. **Hysteresis**: an event starts where the probability reaches ``high`` and extends both ways
   while it stays at or above ``low`` (``low == high`` is a plain threshold).
4. **Clean-up**: events separated by less than ``merge_gap`` seconds (one value, or one per class)
   are merged; events shorter than ``min_duration`` seconds are dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Sequence

import numpy as np

from earshot.errors import ConfigError


@dataclass
class DecodeParams:
    """How frame probabilities become events; every list has one value per class."""

    high: list[float] = field(default_factory=list)  # hysteresis: where an event may start
    low: list[float] = field(default_factory=list)  # ... and how far it extends
    median_seconds: list[float] = field(default_factory=list)
    tag_threshold: float | None = None  # gate each class on its clip probability; None: no gate
    min_duration: float = 0.05
    merge_gap: float | list[float] = 0.1  # one gap for every class, or one per class

    def gap(self, c: int) -> float:
        """Class ``c``'s merge gap in seconds."""
        return class_gap(self.merge_gap, c)

    @classmethod
    def default(cls, n_classes: int, threshold: float = 0.5, median_seconds: float = 0.25) -> "DecodeParams":
        return cls([threshold] * n_classes, [threshold / 2] * n_classes, [median_seconds] * n_classes)

    @classmethod
    def from_dict(cls, d: dict[str, Any], n_classes: int) -> "DecodeParams":
        known = {f.name for f in fields(cls)}
        bad = set(d) - known
        if bad:
            raise ConfigError(f"task.decode: unknown key(s) {sorted(bad)}; known: {sorted(known)}")
        p = cls.default(n_classes)
        for k, v in d.items():
            if k in ("high", "low", "median_seconds") or (k == "merge_gap" and not isinstance(v, (int, float))):
                v = [float(v)] * n_classes if isinstance(v, (int, float)) else [float(x) for x in v]
                if len(v) != n_classes:
                    raise ConfigError(f"task.decode.{k}: {len(v)} values for {n_classes} classes")
            setattr(p, k, v)
        if any(lo > hi for lo, hi in zip(p.low, p.high)):
            raise ConfigError("task.decode: a low threshold is above its high threshold")
        return p

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def class_gap(merge_gap: float | list[float], c: int) -> float:
    """Class ``c``'s gap from a ``merge_gap`` of one number or one per class."""
    return float(merge_gap[c]) if isinstance(merge_gap, list) else float(merge_gap)


def smooth(probs: np.ndarray, hop: float, median_seconds: Sequence[float]) -> np.ndarray:
    """Median-filter each class's probabilities ``(T, C)`` over ``median_seconds[c]`` (odd frame count)."""
    from scipy.ndimage import median_filter  # imported here: it costs 0.4 s of every CLI start

    out = np.array(probs, np.float64, copy=True)
    for c, sec in enumerate(median_seconds):
        k = int(round(sec / hop))
        k += 1 - k % 2  # odd
        if k > 1:
            out[:, c] = median_filter(out[:, c], size=k, mode="nearest")
    return out


def hysteresis(p: np.ndarray, high: float, low: float) -> list[tuple[int, int]]:
    """Frame spans ``[start, end)`` where ``p >= low`` and that reach ``high`` somewhere."""
    above = np.concatenate([[False], p >= low, [False]])
    d = np.diff(above.astype(np.int8))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends) if p[s:e].max() >= high]


def merge_spans(spans: list[tuple[float, float]], gap: float, min_duration: float) -> list[tuple[float, float]]:
    """Merge spans closer than ``gap`` seconds, then drop those shorter than ``min_duration``."""
    out: list[list[float]] = []
    for on, off in sorted(spans):
        if out and on - out[-1][1] < gap:
            out[-1][1] = max(out[-1][1], off)
        else:
            out.append([on, off])
    return [(a, b) for a, b in out if b - a >= min_duration]


def decode_events(frame_probs: np.ndarray, hop: float, labels: Sequence[str], params: DecodeParams,
                  clip_probs: np.ndarray | None = None) -> list[tuple[float, float, str, float]]:
    """Events ``(onset, offset, label, confidence)`` from frame probabilities ``(T, C)`` at ``hop``
    seconds; confidence is the event's peak smoothed probability. Sorted by onset."""
    p = smooth(frame_probs, hop, params.median_seconds)
    t_end = len(p) * hop
    events = []
    for c, lab in enumerate(labels):
        if params.tag_threshold is not None and clip_probs is not None and clip_probs[c] < params.tag_threshold:
            continue
        spans = [(s * hop, min(e * hop, t_end)) for s, e in hysteresis(p[:, c], params.high[c], params.low[c])]
        for on, off in merge_spans(spans, params.gap(c), params.min_duration):
            peak = float(p[int(on / hop) : max(int(on / hop) + 1, int(round(off / hop))), c].max())
            events.append((round(on, 3), round(off, 3), lab, round(peak, 4)))
    return sorted(events, key=lambda e: (e[0], e[2]))


def event_roll(events: Sequence[tuple[float, float, str]], labels: Sequence[str], n_frames: int, hop: float,
               start: float = 0.0) -> np.ndarray:
    """Frame targets ``(n_frames, C)``: 1 where an event of the class covers the frame's centre,
    for frames starting at ``start`` seconds."""
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.zeros((n_frames, len(labels)), np.float32)
    centres = start + (np.arange(n_frames) + 0.5) * hop
    for on, off, lab in events:
        if lab in index:
            y[(centres >= on) & (centres < off), index[lab]] = 1.0
    return y
