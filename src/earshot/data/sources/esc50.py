"""ESC-50: ``audio/*.wav`` and ``meta/esc50.csv`` (filename,fold,target,category,esc10,src_file,take).

Five predefined folds for cross-validation; ``esc10=True`` keeps the ESC-10 subset. Rows whose
audio is missing (partial copies exist) are reported and skipped.
"""

from __future__ import annotations

from pathlib import Path

from earshot.data.sources.common import PrepareResult, validate
from earshot.data.sources.csv_table import parse_bool, read_table
from earshot.errors import DataError


def prepare_esc50(root: str | Path, esc10: bool = False, strict: bool = False) -> PrepareResult:
    """Clips with ``fold`` 1-5 and the ``category`` label; no split (use data.test_folds)."""
    root = Path(root)
    meta = root / "meta" / "esc50.csv"
    if not meta.exists():
        raise DataError(meta, "ESC-50 metadata not found (expected ROOT/meta/esc50.csv)")
    cands, report = read_table(meta, root / "audio", path_col="filename", label_col="category")
    if esc10:
        import csv

        with open(meta, encoding="utf-8-sig") as f:
            flags = {r["filename"]: r.get("esc10", "") for r in csv.DictReader(f)}
        kept = []
        for c in cands:
            try:
                if parse_bool(flags.get(c.path.name, "0")):
                    kept.append(c)
            except ValueError as e:
                report.add(meta, f"malformed esc10 flag ({e})", c.line)
        cands = kept
    for c in cands:
        if c.fold is None:
            report.add(meta, "row has no fold", c.line)
    cands = [c for c in cands if c.fold is not None]
    if not cands:
        raise DataError(meta, "no usable rows")
    return validate(cands, strict=strict, skipped=report)
