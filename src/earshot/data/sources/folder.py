"""``ROOT/<class>/*.wav`` (optionally ``ROOT/<split>/<class>/*.wav``): one sub-folder per class."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from earshot.audio.io import AUDIO_EXTENSIONS
from earshot.data.manifest import SkipReport
from earshot.data.sources.common import Candidate, PrepareResult, stable_fraction, validate
from earshot.errors import DataError

SPLIT_NAMES = ("train", "val", "valid", "validation", "test", "eval")


def _split_name(name: str) -> str:
    return {"valid": "val", "validation": "val", "eval": "test"}.get(name, name)


def prepare_folder(
    root: str | Path,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    labels: Sequence[str] | None = None,
    strict: bool = False,
    keep_silent: bool = False,
) -> PrepareResult:
    """Scan a class-per-folder tree. Without split folders, clips get a stable random split."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a directory")
    skipped = SkipReport()
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    has_splits = bool(subdirs) and all(p.name.lower() in SPLIT_NAMES for p in subdirs)
    groups = [(_split_name(p.name.lower()), p) for p in subdirs] if has_splits else [(None, root)]
    cands = []
    for split, base in groups:
        for class_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            for f in sorted(class_dir.rglob("*")):
                if not f.is_file():
                    continue
                if f.suffix.lower() not in AUDIO_EXTENSIONS:
                    if not f.name.startswith("."):
                        skipped.add(f, f"not an audio file extension ({f.suffix or 'none'})")
                    continue
                s = split
                if s is None:
                    u = stable_fraction(f"{class_dir.name}/{f.name}", seed)
                    s = "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"
                cands.append(Candidate(f, [class_dir.name], split=s))
        for f in sorted(base.iterdir()):
            if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS:
                skipped.add(f, "audio file outside any class folder")
    if not cands:
        raise DataError(root, "no audio files found in class sub-folders (expected ROOT/<class>/<file>.wav)")
    return validate(cands, labels=labels, strict=strict, keep_silent=keep_silent, skipped=skipped)
