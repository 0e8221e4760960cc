"""Speech Commands v0.02: ``ROOT/<word>/*.wav``, ``validation_list.txt``, ``testing_list.txt`` and
``_background_noise_/``.

Two tasks:

- ``task="35"``: all 35 words;
- ``task="12"``: yes, no, up, down, left, right, on, off, stop, go, plus ``_unknown_`` (every
  other word) and ``_silence_``: one-second clips cut from the background-noise recordings and
  written to ``silence_dir`` (default ``ROOT/_earshot_silence_``), about ``silence_fraction`` of
  each split.

Clips listed in ``testing_list.txt`` are test, those in ``validation_list.txt`` validation, the
rest train; silence clips get a split from a stable hash of their source and position.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from earshot.audio.io import load_audio
from earshot.data.manifest import SkipReport
from earshot.data.sources.common import Candidate, PrepareResult, stable_fraction, validate
from earshot.errors import AudioError, DataError

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
BACKGROUND = "_background_noise_"


def _read_list(path: Path) -> set[str]:
    return {x.strip() for x in path.read_text().splitlines() if x.strip()} if path.exists() else set()


def _silence_clips(root: Path, out: Path, n: int, seed: int, report: SkipReport) -> list[Candidate]:
    """``n`` one-second clips cut at random places from the background-noise files, scaled to a random level."""
    import soundfile as sf

    noise = []
    for f in sorted((root / BACKGROUND).glob("*.wav")):
        try:
            x, sr = load_audio(f)
        except AudioError as e:
            report.add(f, e.reason)
            continue
        if len(x) >= sr:
            noise.append((f, x, sr))
    if not noise:
        raise DataError(root / BACKGROUND, "no background-noise recording of at least 1 s to cut silence from")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cands = []
    for i in range(n):
        f, x, sr = noise[i % len(noise)]
        start = int(rng.integers(0, len(x) - sr + 1))
        clip = x[start : start + sr] * float(rng.uniform(0.0, 1.0))
        path = out / f"silence_{i:05d}.wav"
        sf.write(path, clip, sr, subtype="PCM_16")
        u = stable_fraction(f"{f.name}:{start}", seed)
        split = "test" if u < 0.1 else "val" if u < 0.2 else "train"
        cands.append(Candidate(path, [SILENCE], split=split, extra={"source": f.name, "start": start / sr}))
    return cands


def prepare_speech_commands(root: str | Path, task: Literal["35", "12"] = "35", silence_fraction: float = 0.1,
                            silence_dir: str | None = None, seed: int = 0, strict: bool = False) -> PrepareResult:
    """Speech Commands v0.02 keyword spotting: the 35-word task, or 10 words + _unknown_ + _silence_ (task 12)."""
    root = Path(root)
    task = str(task)  # type: ignore[assignment]
    if task not in ("35", "12"):
        raise DataError(root, f"task must be 35 or 12, not {task!r}")
    if not root.is_dir():
        raise DataError(root, "not a directory")
    val, test = _read_list(root / "validation_list.txt"), _read_list(root / "testing_list.txt")
    if not val and not test:
        raise DataError(root, "validation_list.txt and testing_list.txt not found (is this Speech Commands?)")
    report = SkipReport()
    cands = []
    for word_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for f in sorted(word_dir.glob("*.wav")):
            rel = f"{word_dir.name}/{f.name}"
            split = "test" if rel in test else "val" if rel in val else "train"
            word = word_dir.name
            label = word if task == "35" or word in COMMANDS else UNKNOWN
            cands.append(Candidate(f, [label], split=split, extra={"word": word, "speaker": f.name.split("_")[0]}))
    if not cands:
        raise DataError(root, "no word folders with .wav files")
    if task == "12":
        n = int(round(silence_fraction * len(cands)))
        out = Path(silence_dir) if silence_dir else root / "_earshot_silence_"
        cands += _silence_clips(root, out, n, seed, report)
    res = validate(cands, strict=strict, skipped=report, keep_silent=True)
    return res
