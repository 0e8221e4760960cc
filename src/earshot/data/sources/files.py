"""A flat folder whose file names carry the label, e.g. DCASE 2016 Task 2 ``cough168.wav``.

The label is the first group of ``pattern`` matched against the file stem (default: the
leading letters). Clips get stratified folds 1..``n_folds`` for cross-validation.
"""

from __future__ import annotations

import re
from pathlib import Path

from earshot.audio.io import AUDIO_EXTENSIONS
from earshot.data.manifest import SkipReport
from earshot.data.sources.common import Candidate, PrepareResult, stratified_folds, validate
from earshot.errors import DataError


def prepare_files(root: str | Path, pattern: str = r"^([A-Za-z]+)", n_folds: int = 5, seed: int = 0,
                  strict: bool = False) -> PrepareResult:
    """Label each audio file in ``root`` by a regex on its name; assign stratified folds."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a directory")
    rx = re.compile(pattern)
    skipped = SkipReport()
    found: list[tuple[Path, str]] = []
    for f in sorted(root.iterdir()):
        if not f.is_file() or f.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        m = rx.search(f.stem)
        if not m:
            skipped.add(f, f"file name does not match the label pattern {pattern!r}")
            continue
        found.append((f, m.group(1) if m.groups() else m.group(0)))
    if not found:
        raise DataError(root, "no audio files whose names match the label pattern")
    by_label: dict[str, list[str]] = {}
    for f, lab in found:
        by_label.setdefault(lab, []).append(f.name)
    folds = stratified_folds(by_label, n_folds, seed)
    cands = [Candidate(f, [lab], fold=folds[f.name]) for f, lab in found]
    return validate(cands, strict=strict, skipped=skipped)
