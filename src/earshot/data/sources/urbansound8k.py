"""UrbanSound8K: ``audio/fold1..10/`` and ``metadata/UrbanSound8K.csv``
(slice_file_name,fsID,start,end,salience,fold,classID,class). Ten predefined folds."""

from __future__ import annotations

import csv
from pathlib import Path

from earshot.data.manifest import SkipReport
from earshot.data.sources.common import Candidate, PrepareResult, validate
from earshot.errors import DataError

COLUMNS = ("slice_file_name", "fold", "class")


def prepare_urbansound8k(root: str | Path, strict: bool = False) -> PrepareResult:
    """Clips with ``fold`` 1-10 and the ``class`` label; salience goes in ``extra``."""
    root = Path(root)
    meta = root / "metadata" / "UrbanSound8K.csv"
    if not meta.exists():
        raise DataError(meta, "UrbanSound8K metadata not found (expected ROOT/metadata/UrbanSound8K.csv)")
    report = SkipReport()
    cands = []
    with open(meta, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise DataError(meta, f"missing column(s) {missing} in header {header}", 1)
        idx = {c: header.index(c) for c in header}
        for line, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != len(header):
                report.add(meta, f"row has {len(row)} columns, header has {len(header)}", line)
                continue
            try:
                fold = int(row[idx["fold"]])
            except ValueError:
                report.add(meta, f"malformed row (fold {row[idx['fold']]!r} is not a number)", line)
                continue
            name = row[idx["slice_file_name"]].strip()
            extra = {"salience": int(row[idx["salience"]])} if "salience" in idx and row[idx["salience"]].isdigit() else {}
            cands.append(Candidate(root / "audio" / f"fold{fold}" / name, [row[idx["class"]].strip()], fold=fold,
                                   extra=extra, source=str(meta), line=line))
    if not cands:
        raise DataError(meta, "no usable rows")
    return validate(cands, strict=strict, skipped=report)
