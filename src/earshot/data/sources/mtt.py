"""MagnaTagATune: ``annotations_final.csv`` (tab-separated, quoted: ``clip_id``, 188 tag columns,
``mp3_path``) and ``mp3/<0-f>/*.mp3``.

The 50 most frequent tags are kept (the usual benchmark). The split follows the first character
of the mp3 folder: ``0``-``b`` train, ``c`` validation, ``d``-``f`` test. A clip with none of the
kept tags stays as an all-negative example; a tag cell other than 0/1 skips its row, reported
with its line; an mp3 that fails to decode is skipped and reported.
"""

from __future__ import annotations

import csv
from pathlib import Path

from earshot.data.manifest import SkipReport
from earshot.data.sources.common import Candidate, PrepareResult, validate
from earshot.errors import DataError

TRAIN_DIRS, VAL_DIRS, TEST_DIRS = set("0123456789ab"), {"c"}, set("def")


def mtt_split(mp3_path: str) -> str | None:
    """``0``-``b`` train, ``c`` val, ``d``-``f`` test, by the mp3's folder."""
    d = mp3_path.strip().lstrip("./")[:1].lower()
    return "train" if d in TRAIN_DIRS else "val" if d in VAL_DIRS else "test" if d in TEST_DIRS else None


def prepare_mtt(root: str | Path, n_tags: int = 50, audio_dir: str | None = None, strict: bool = False) -> PrepareResult:
    """MagnaTagATune top-``n_tags`` auto-tagging (ROOT/annotations_final.csv, ROOT/mp3/); split by mp3 folder."""
    root = Path(root)
    ann = root / "annotations_final.csv"
    if not ann.exists():
        raise DataError(ann, "MagnaTagATune annotations not found (expected ROOT/annotations_final.csv)")
    audio = Path(audio_dir) if audio_dir else (root / "mp3" if (root / "mp3").is_dir() else root)
    report = SkipReport()
    with open(ann, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows:
        raise DataError(ann, "empty annotation file")
    header = [h.strip() for h in rows[0]]
    if "clip_id" not in header or "mp3_path" not in header:
        raise DataError(ann, f"header needs clip_id and mp3_path columns, found {header[:3]}...", 1)
    ci, pi = header.index("clip_id"), header.index("mp3_path")
    tag_cols = [i for i in range(len(header)) if i not in (ci, pi)]
    parsed: list[tuple[int, str, str, list[int]]] = []
    counts = [0] * len(tag_cols)
    for line, row in enumerate(rows[1:], 2):
        if not row or all(not x.strip() for x in row):
            continue
        if len(row) != len(header):
            report.add(ann, f"row has {len(row)} columns, header has {len(header)}", line)
            continue
        values = [row[i].strip() for i in tag_cols]
        bad = [(header[i], v) for i, v in zip(tag_cols, values) if v not in ("0", "1")]
        if bad:
            report.add(ann, f"tag column {bad[0][0]!r} holds {bad[0][1]!r}, expected 0 or 1", line)
            continue
        hot = [int(v) for v in values]
        counts = [a + b for a, b in zip(counts, hot)]
        parsed.append((line, row[ci].strip(), row[pi].strip(), hot))
    if not parsed:
        raise DataError(ann, f"no usable rows ({len(report)} skipped)")
    top = sorted(range(len(tag_cols)), key=lambda j: (-counts[j], j))[:n_tags]
    tags = [header[tag_cols[j]] for j in top]
    cands = []
    for line, clip_id, mp3, hot in parsed:
        split = mtt_split(mp3)
        if not mp3 or split is None:
            report.add(ann, f"mp3_path {mp3!r} is not under a folder 0-f", line)
            continue
        labels = [t for t, j in zip(tags, top) if hot[j]]
        cands.append(Candidate(audio / mp3, labels, split=split, extra={"clip_id": clip_id}, source=str(ann),
                               line=line))
    res = validate(cands, labels=tags, strict=strict, skipped=report)
    res.clips.sort(key=lambda c: c.path)
    return res
