"""Mixtures of isolated events over real background recordings, with multi-label and strong labels.

:func:`build_event_mixtures` turns a folder of isolated events (one recording per file, class
from the file name) and a few background recordings into a multi-label dataset: each example is
a clip of ``clip_seconds`` holding 1 to ``max_events`` events of different classes, each at a
random event-to-background ratio. Events are split by recording, so a recording heard in
training is never heard in test; each background is split by time in the same proportions.
The same seed gives the same files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from earshot.atomic import atomic_write_text
from earshot.audio.io import AUDIO_EXTENSIONS, load_audio
from earshot.data.manifest import Clip, Event, write_manifest
from earshot.data.sources.common import stable_fraction
from earshot.errors import DataError


@dataclass
class EventPool:
    """Isolated events of one split, by class: ``(path, samples)`` pairs."""

    by_class: dict[str, list[tuple[str, np.ndarray]]]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-12


def split_recordings(files: Sequence[Path], label_of: re.Pattern[str], test_fraction: float, seed: int
                     ) -> dict[str, dict[str, list[Path]]]:
    """``{"train": {class: [files]}, "test": {...}}``: per class, a stable-hash order of its
    recordings; the last ``test_fraction`` (rounded) go to test."""
    by_class: dict[str, list[Path]] = {}
    for f in files:
        m = label_of.search(f.stem)
        if m:
            by_class.setdefault(m.group(1), []).append(f)
    out: dict[str, dict[str, list[Path]]] = {"train": {}, "test": {}}
    for cls, fs in sorted(by_class.items()):
        fs = sorted(fs, key=lambda f: stable_fraction(f.name, seed))
        n_test = max(1, int(round(test_fraction * len(fs))))
        out["train"][cls], out["test"][cls] = fs[:-n_test], fs[-n_test:]
    return out


def _load_pool(files: dict[str, list[Path]], sr: int) -> EventPool:
    return EventPool({cls: [(str(f), load_audio(f, sr)[0]) for f in fs] for cls, fs in files.items()})


def _background_parts(paths: Sequence[Path], sr: int, test_fraction: float) -> dict[str, list[np.ndarray]]:
    """Each background cut in time: the first part for train (and validation), the last for test."""
    out: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for p in paths:
        x = load_audio(p, sr)[0]
        cut = int(len(x) * (1 - test_fraction))
        out["train"].append(x[:cut])
        out["test"].append(x[cut:])
    return out


def _background(parts: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples from a random part at a random offset (looped when the part is shorter)."""
    x = parts[int(rng.integers(len(parts)))]
    if len(x) < n:
        x = np.tile(x, n // len(x) + 1)
    start = int(rng.integers(0, len(x) - n + 1))
    return x[start : start + n].astype(np.float32)


def mix_example(pool: EventPool, bg_parts: list[np.ndarray], n: int, sr: int, n_events: int,
                ebr_db: tuple[float, float], rng: np.random.Generator) -> tuple[np.ndarray, list[Event]]:
    """One mixture of ``n`` samples: ``n_events`` events of distinct classes over a background."""
    bg = _background(bg_parts, n, rng)
    bg_rms = rms(bg)
    x = bg.copy()
    events = []
    classes = sorted(pool.by_class)
    for cls in rng.choice(classes, size=min(n_events, len(classes)), replace=False):
        path, ev = pool.by_class[str(cls)][int(rng.integers(len(pool.by_class[str(cls)])))]
        ev = ev[:n]
        onset = int(rng.integers(0, n - len(ev) + 1))
        gain = bg_rms * 10 ** (rng.uniform(*ebr_db) / 20) / rms(ev)
        x[onset : onset + len(ev)] += gain * ev
        events.append(Event(round(onset / sr, 4), round((onset + len(ev)) / sr, 4), str(cls)))
    peak = float(np.max(np.abs(x)))
    if peak > 0.99:  # keep the mixture within full scale without changing the ratios
        x *= 0.99 / peak
    return x.astype(np.float32), sorted(events, key=lambda e: e.onset)


def build_event_mixtures(events_dir: str | Path, backgrounds: Sequence[str | Path], out: str | Path,
                         n_train: int = 600, n_val: int = 100, n_test: int = 200, clip_seconds: float = 4.0,
                         max_events: int = 3, ebr_db: tuple[float, float] = (-6.0, 6.0), sample_rate: int = 22050,
                         test_fraction: float = 0.3, label_pattern: str = r"^([A-Za-z]+)", seed: int = 0) -> Path:
    """Write ``out/audio/<split>/*.wav`` and ``out/manifest.jsonl`` (multi-label clips with strong events).

    Train and validation mixtures draw on the training recordings and the first part of each
    background; test mixtures on the held-out recordings and the last part.
    """
    files = sorted(f for f in Path(events_dir).iterdir() if f.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise DataError(events_dir, "no audio files")
    if not backgrounds:
        raise DataError(out, "no background recordings given")
    split = split_recordings(files, re.compile(label_pattern), test_fraction, seed)
    pools = {"train": _load_pool(split["train"], sample_rate), "test": _load_pool(split["test"], sample_rate)}
    bgs = _background_parts([Path(b) for b in backgrounds], sample_rate, test_fraction)
    out = Path(out)
    rng = np.random.default_rng(seed)
    n = int(round(clip_seconds * sample_rate))
    clips = []
    for name, count, source in (("train", n_train, "train"), ("val", n_val, "train"), ("test", n_test, "test")):
        folder = out / "audio" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            x, events = mix_example(pools[source], bgs[source], n, sample_rate, int(rng.integers(1, max_events + 1)),
                                    ebr_db, rng)
            path = folder / f"{name}_{i:05d}.wav"
            sf.write(path, x, sample_rate, subtype="PCM_16")
            clips.append(Clip(id=f"{name}_{i:05d}", path=str(path.resolve()), duration=clip_seconds,
                              sample_rate=sample_rate, channels=1, labels=sorted({e.label for e in events}),
                              split=name, events=events))
    recordings = {s: {c: [f.name for f in fs] for c, fs in d.items()} for s, d in split.items()}
    atomic_write_text(out / "recordings.json", json.dumps(recordings, indent=1))
    return write_manifest(out / "manifest.jsonl", clips)
