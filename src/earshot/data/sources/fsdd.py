"""Free Spoken Digit Dataset: ``{digit}_{speaker}_{index}.wav``.

Official split: index 0-4 is test. We hold out index 5-9 as validation and train on 10-49.
"""

from __future__ import annotations

import re
from pathlib import Path

from earshot.data.manifest import SkipReport
from earshot.data.sources.common import Candidate, PrepareResult, validate
from earshot.errors import DataError

NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")


def fsdd_split(index: int) -> str:
    return "test" if index < 5 else "val" if index < 10 else "train"


def prepare_fsdd(root: str | Path, strict: bool = False) -> PrepareResult:
    """Build FSDD records with the official test split; speaker goes in ``extra``."""
    root = Path(root)
    rec = root / "recordings" if (root / "recordings").is_dir() else root
    if not rec.is_dir():
        raise DataError(root, "not a directory")
    skipped = SkipReport()
    cands = []
    for f in sorted(rec.iterdir()):
        if f.suffix.lower() != ".wav":
            continue
        m = NAME.match(f.stem)
        if not m:
            skipped.add(f, "name does not match {digit}_{speaker}_{index}.wav")
            continue
        digit, speaker, index = m.group(1), m.group(2), int(m.group(3))
        cands.append(Candidate(f, [digit], split=fsdd_split(index), extra={"speaker": speaker, "index": index}))
    if not cands:
        raise DataError(rec, "no FSDD recordings found")
    return validate(cands, strict=strict, skipped=skipped)
