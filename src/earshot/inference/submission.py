"""Kaggle submission files: ``fname,label`` with the top-3 labels separated by spaces."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from earshot.atomic import atomic_write_text
from earshot.errors import AudioError, DataError
from earshot.inference.predictor import Predictor


def read_sample_submission(path: str | Path) -> tuple[list[str], list[str]]:
    """Header and the ``fname`` column, in row order."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "sample submission not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows or [h.strip() for h in rows[0]][:2] != ["fname", "label"]:
        raise DataError(path, f"expected header fname,label, found {rows[0] if rows else 'nothing'}", 1)
    names = []
    for i, r in enumerate(rows[1:], 2):
        if len(r) != len(rows[0]):
            raise DataError(path, f"row has {len(r)} columns, header has {len(rows[0])}", i)
        names.append(r[0].strip())
    return rows[0], names


def kaggle_submission(checkpoint: str | Path, audio_dir: str | Path, sample_submission: str | Path,
                      out: str | Path, top_k: int = 3, device: str | None = None) -> dict[str, Any]:
    """Predict every file the sample submission lists, in its order, and write ``out``.

    A file that is missing or unreadable still gets a row (the labels most often predicted for
    the other files) and is listed in the result, so the submission keeps its shape.
    """
    header, names = read_sample_submission(sample_submission)
    pred = Predictor.load(checkpoint, device)
    audio_dir = Path(audio_dir)
    rows: list[list[str] | None] = []
    failed: list[str] = []
    totals = np.zeros(len(pred.labels))
    for name in names:
        try:
            r = pred.predict(audio_dir / name, top_k)
        except AudioError as e:
            failed.append(str(e))
            rows.append(None)
            continue
        totals += r.probs
        rows.append([name, " ".join(lab for lab, _ in r.top)])
    fallback = " ".join(pred.labels[i] for i in np.argsort(-totals)[:top_k])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(["fname", "label"])
    for name, row in zip(names, rows):
        w.writerow(row if row is not None else [name, fallback])
    atomic_write_text(out, text.getvalue())
    validate_submission(out, sample_submission, top_k, pred.labels)
    return {"file": str(out), "rows": len(names), "failed": failed, "fallback": fallback}


def validate_submission(path: str | Path, sample_submission: str | Path, top_k: int, labels: list[str]) -> None:
    """Raise :class:`DataError` unless ``path`` has the sample's rows in its order and known labels."""
    _, want = read_sample_submission(sample_submission)
    header, got = read_sample_submission(path)
    if got != want:
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        raise DataError(path, f"rows differ from the sample submission (first at data row {first + 1}; "
                              f"{len(got)} rows vs {len(want)})")
    known = set(labels)
    with open(path, newline="") as f:
        for i, r in enumerate(csv.reader(f)):
            if i == 0:
                continue
            labs = r[1].split()
            if not 1 <= len(labs) <= top_k or any(lab not in known for lab in labs):
                raise DataError(path, f"bad label cell {r[1]!r}", i + 1)
