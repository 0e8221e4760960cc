"""Synthetic soundscapes with strong labels, built the way DCASE builds its synthetic sets.

Isolated events (``FOREGROUND_DIR/<class>/*.wav``) are placed at random onsets over a crop of a
real background recording (``BACKGROUND_DIR/*.wav``), each at its own event-to-background ratio
(EBR, dB: the event's RMS over the background crop's RMS). Scenes are **monophonic** (events never
overlap) or **polyphonic** (events may overlap, but never with an event of the same class). The
number of events follows a rate per minute, as the DCASE 2016 Task 2 scenes do (11 to 55 events
in 2 minutes). The same seed gives the same files.

:class:`SceneStream` mixes scenes the same way while training, a fresh set every epoch (dynamic
mixing, ``data.scenes``): the model never hears the same mixture twice.

Written: ``audio/<name>.wav``, ``strong.tsv`` (``filename onset offset event_label``; a scene
without events has one row with empty fields, as in DESED), ``weak.tsv`` (``filename
event_labels``, comma-separated) and ``manifest.jsonl`` (strong clips for ``earshot train``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import soundfile as sf

from earshot.atomic import atomic_write_text
from earshot.audio.io import AUDIO_EXTENSIONS, load_audio
from earshot.data.manifest import Clip, Event, write_manifest
from earshot.data.mixing import rms
from earshot.errors import DataError

Polyphony = Literal["mono", "poly", "both"]


@dataclass
class SceneSpec:
    """What one call of :func:`synthesize` builds."""

    n_clips: int = 100
    clip_seconds: float = 10.0
    sample_rate: int = 16000
    ebr_db: Sequence[float] = (-6.0, 0.0, 6.0)  # each event draws one of these
    events_per_minute: tuple[float, float] = (5.5, 27.5)  # each scene draws a rate in this range
    polyphony: Polyphony = "both"  # both: alternate mono and poly scenes
    loop_backgrounds: bool = False  # a background shorter than a clip is looped (else an error)
    speed: tuple[float, float] | None = None  # each event played at a random speed in this range (pitch and tempo)
    prefix: str = "scene"
    split: str | None = None
    seed: int = 0


def foreground_classes(folder: str | Path, sample_rate: int) -> dict[str, list[tuple[str, np.ndarray]]]:
    """``{class: [(path, audio)]}`` from ``folder/<class>/*``; an empty class folder is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "foreground folder not found")
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            raise DataError(d, "class folder holds no audio files (remove it or add events)")
        out[d.name] = [(str(f), load_audio(f, sample_rate)[0]) for f in files]
    if not out:
        raise DataError(folder, "no class folders (expected FOREGROUND_DIR/<class>/*.wav)")
    return out


def background_recordings(folder: str | Path, sample_rate: int) -> list[tuple[str, np.ndarray]]:
    folder = Path(folder)
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in AUDIO_EXTENSIONS) if folder.is_dir() else []
    if not files:
        raise DataError(folder, "no background recordings (audio files) found")
    return [(str(f), load_audio(f, sample_rate)[0]) for f in files]


def _background_crop(bgs: list[tuple[str, np.ndarray]], n: int, sr: int, loop: bool,
                     rng: np.random.Generator) -> np.ndarray:
    path, x = bgs[int(rng.integers(len(bgs)))]
    if len(x) < n:
        if not loop:
            raise DataError(path, f"background is {len(x) / sr:.2f} s, shorter than the {n / sr:.2f} s clip "
                                  "(use longer backgrounds, or loop them with --loop-backgrounds)")
        fade = min(len(x) // 4, sr // 10)
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        seg = x.astype(np.float32)
        out = seg.copy()
        while len(out) < n + fade:  # crossfaded loop
            tail = out[-fade:] * (1 - ramp) + seg[:fade] * ramp
            out = np.concatenate([out[:-fade], tail, seg[fade:]])
        x = out
    start = int(rng.integers(0, len(x) - n + 1))
    return x[start : start + n].astype(np.float32)


def _onsets(durations: list[int], n: int, mono: bool, labels: list[str], rng: np.random.Generator) -> list[int | None]:
    """Onsets (samples) for events of ``durations``; None where an event does not fit."""
    if mono:
        keep = []
        total = 0
        for i, d in enumerate(durations):  # as many as fit end to end
            if total + d <= n:
                keep.append(i)
                total += d
        gaps = rng.dirichlet(np.ones(len(keep) + 1)) * (n - total) if keep else []
        out: list[int | None] = [None] * len(durations)
        t = 0.0
        for j, i in enumerate(keep):
            t += gaps[j]
            out[i] = int(t)
            t += durations[i]
        return out
    placed: list[tuple[int, int, str]] = []
    out = []
    for d, lab in zip(durations, labels):
        onset = None
        for _ in range(20):  # never overlap an event of the same class
            o = int(rng.integers(0, max(1, n - d + 1)))
            if all(lab != pl or o + d <= a or o >= b for a, b, pl in placed):
                onset = o
                break
        if onset is not None:
            placed.append((onset, onset + d, lab))
        out.append(onset)
    return out


def _speed(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times faster (shorter and higher), by resampling."""
    import soxr

    if abs(factor - 1.0) < 1e-3 or len(x) < 2:
        return x
    return soxr.resample(x.astype(np.float32), 1_000_000, int(round(1_000_000 / factor)), quality="MQ")


def make_scene(events: dict[str, list[tuple[str, np.ndarray]]], bgs: list[tuple[str, np.ndarray]], spec: SceneSpec,
               mono: bool, rng: np.random.Generator) -> tuple[np.ndarray, list[Event]]:
    """One scene: audio ``(N,)`` and its events, sorted by onset."""
    sr = spec.sample_rate
    n = int(round(spec.clip_seconds * sr))
    bg = _background_crop(bgs, n, sr, spec.loop_backgrounds, rng)
    rate = rng.uniform(*spec.events_per_minute)
    count = int(rng.poisson(rate * spec.clip_seconds / 60.0))
    classes = sorted(events)
    labels = [str(c) for c in rng.choice(classes, size=count)] if count else []
    sounds = [events[lab][int(rng.integers(len(events[lab])))][1] for lab in labels]
    if spec.speed is not None:
        sounds = [_speed(s, float(rng.uniform(*spec.speed))) for s in sounds]
    sounds = [s[:n] for s in sounds]
    onsets = _onsets([len(s) for s in sounds], n, mono, labels, rng)
    x = bg.copy()
    bg_rms = rms(bg)
    out = []
    for lab, s, o in zip(labels, sounds, onsets):
        if o is None or len(s) == 0:
            continue
        ebr = float(rng.choice(np.asarray(spec.ebr_db, np.float64)))
        x[o : o + len(s)] += s * (bg_rms * 10 ** (ebr / 20) / rms(s))
        out.append(Event(round(o / sr, 3), round((o + len(s)) / sr, 3), lab))
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 0.99:  # within full scale; ratios unchanged
        x *= 0.99 / peak
    return x.astype(np.float32), sorted(out, key=lambda e: (e.onset, e.label))


def synthesize(foreground_dir: str | Path, background_dir: str | Path, out: str | Path,
               spec: SceneSpec | None = None) -> Path:
    """Write ``spec.n_clips`` scenes, ``strong.tsv``, ``weak.tsv`` and ``manifest.jsonl`` into ``out``;
    returns the manifest's path."""
    spec = spec or SceneSpec()
    if spec.n_clips < 1:
        raise DataError(out, "n_clips must be at least 1")
    events = foreground_classes(foreground_dir, spec.sample_rate)
    bgs = background_recordings(background_dir, spec.sample_rate)
    out = Path(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    clips, strong, weak = [], ["filename\tonset\toffset\tevent_label"], ["filename\tevent_labels"]
    for i in range(spec.n_clips):
        mono = spec.polyphony == "mono" or (spec.polyphony == "both" and i % 2 == 0)
        x, evs = make_scene(events, bgs, spec, mono, rng)
        name = f"{spec.prefix}_{i:05d}.wav"
        sf.write(out / "audio" / name, x, spec.sample_rate, subtype="PCM_16")
        strong += [f"{name}\t{e.onset:.3f}\t{e.offset:.3f}\t{e.label}" for e in evs] or [f"{name}\t\t\t"]
        tags = sorted({e.label for e in evs})
        weak.append(f"{name}\t{','.join(tags)}")
        clips.append(Clip(id=Path(name).stem, path=str((out / "audio" / name).resolve()), duration=spec.clip_seconds,
                          sample_rate=spec.sample_rate, channels=1, labels=tags, split=spec.split, events=evs,
                          annotation="strong", extra={"polyphony": "mono" if mono else "poly"}))
    atomic_write_text(out / "strong.tsv", "\n".join(strong) + "\n")
    atomic_write_text(out / "weak.tsv", "\n".join(weak) + "\n")
    settings = {"foreground": str(foreground_dir), "background": str(background_dir), "classes": sorted(events),
                **{k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(spec).items()}}
    atomic_write_text(out / "synthesis.json", json.dumps(settings, indent=1, default=list))
    return write_manifest(out / "manifest.jsonl", clips)


class SceneStream:
    """``spec.n_clips`` training scenes per epoch, each mixed when it is asked for (dynamic mixing).

    A key ``(index, epoch, position)`` from :class:`earshot.data.loading.EpochSampler` seeds the
    scene from ``(seed, epoch, position)``, so every epoch hears new mixtures of the same events,
    and a run (or a resumed one) is the same whatever the number of loader workers. Items are
    training examples like :class:`earshot.data.loading.CropDataset`'s: the whole scene is the crop,
    and its events are strong labels. The isolated events and backgrounds are decoded once, into
    memory.
    """

    SALT = 0x5CE7E  # keeps scene streams apart from crop streams of the same (seed, epoch, position)

    def __init__(self, foreground_dir: str | Path, background_dir: str | Path, spec: SceneSpec, target: Any,
                 frame_hop: float = 0.0, augment: Any = None):
        self.spec = spec
        self.events = foreground_classes(foreground_dir, spec.sample_rate)
        self.backgrounds = background_recordings(background_dir, spec.sample_rate)
        self.target, self.frame_hop, self.augment = target, frame_hop, augment
        self.rng = np.random.default_rng([spec.seed, self.SALT])
        n = int(round(spec.clip_seconds * spec.sample_rate))
        short = [p for p, x in self.backgrounds if len(x) < n]
        if short and not spec.loop_backgrounds:
            raise DataError(short[0], f"background is shorter than the {spec.clip_seconds:g} s scenes "
                                      "(use longer backgrounds, or data.scenes.loop_backgrounds=true)")

    @property
    def classes(self) -> list[str]:
        return sorted(self.events)

    def __len__(self) -> int:
        return self.spec.n_clips

    def scene(self, key: int | tuple[int, int, int]) -> tuple[np.ndarray, Clip, np.random.Generator]:
        """The audio and strong-labelled clip of scene ``key``, and the generator its example goes on
        drawing from (augmentation)."""
        from earshot.data.loading import example_key

        i, rng = example_key(key, (self.spec.seed, self.SALT), self.rng)
        epoch, pos = (int(key[1]), int(key[2])) if isinstance(key, (tuple, list)) else (0, i)
        p = self.spec.polyphony
        mono = p == "mono" or (p == "both" and bool(rng.integers(2)))
        x, evs = make_scene(self.events, self.backgrounds, self.spec, mono, rng)
        clip = Clip(id=f"scene-e{epoch}-p{pos}", path=f"<scene {i} of epoch {epoch}>", duration=self.spec.clip_seconds,
                    sample_rate=self.spec.sample_rate, channels=1, labels=sorted({e.label for e in evs}),
                    events=evs, annotation="strong")
        return x, clip, rng

    def __getitem__(self, key: int | tuple[int, int, int]) -> dict[str, Any]:
        from earshot.data.loading import training_item
        from earshot.tasks.base import Crop

        x, clip, rng = self.scene(key)
        return training_item(x, 1.0, self.target(clip, Crop(0.0, self.spec.clip_seconds, self.frame_hop)),
                             self.augment, rng)
