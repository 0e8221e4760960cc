"""A CSV (or TSV) listing files and labels: the route for any dataset without its own source.

Columns are found by header name: path (``path``/``filename``/``fname``/``file``), labels
(``label``/``labels``/``category``/``class``), and optional ``split``, ``fold``, ``verified``
(or ``manually_verified``), ``onset``/``offset`` (one row per event). Several labels in one cell
are separated by ``label_sep``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from earshot.data.manifest import Event, SkipReport
from earshot.data.sources.common import Candidate, PrepareResult, validate
from earshot.errors import DataError

PATH_COLS = ("path", "filename", "fname", "file", "filepath", "audio", "slice_file_name")
LABEL_COLS = ("labels", "label", "category", "class", "classname", "event_label", "tags")
VERIFIED_COLS = ("verified", "manually_verified")
TRUE, FALSE = {"1", "true", "yes", "y", "t"}, {"0", "false", "no", "n", "f"}


def _find(header: list[str], names: Sequence[str], given: str | None, what: str, path: Path) -> int | None:
    low = [h.strip().lower() for h in header]
    if given is not None:
        if given.lower() not in low:
            raise DataError(path, f"{what} column {given!r} not in header {header}", 1)
        return low.index(given.lower())
    for n in names:
        if n in low:
            return low.index(n)
    return None


def parse_bool(text: str) -> bool:
    """'1'/'0' (and true/false, yes/no); anything else raises ValueError."""
    t = text.strip().lower()
    if t in TRUE:
        return True
    if t in FALSE:
        return False
    raise ValueError(f"expected 0 or 1, found {text!r}")


def _columns(header: list[str], path_col: str | None, label_col: str | None, path: Path) -> dict[str, int | None]:
    """Index of each known column in ``header`` (None when absent); the path column is required."""
    col = {"path": _find(header, PATH_COLS, path_col, "path", path),
           "label": _find(header, LABEL_COLS, label_col, "label", path),
           "split": _find(header, ("split", "subset"), None, "split", path),
           "fold": _find(header, ("fold",), None, "fold", path),
           "verified": _find(header, VERIFIED_COLS, None, "verified", path),
           "onset": _find(header, ("onset",), None, "onset", path),
           "offset": _find(header, ("offset",), None, "offset", path)}
    if col["path"] is None:
        raise DataError(path, f"no path column in header {header} (expected one of {list(PATH_COLS)})", 1)
    return col


def _parse_row(row: list[str], col: dict[str, int | None], label_sep: str
               ) -> tuple[str, list[str], int | None, bool | None, Event | None]:
    """Path, labels, fold, verified flag and event of one row; ValueError says what is malformed."""
    pi, li, fi, vi, oi, ei = (col[k] for k in ("path", "label", "fold", "verified", "onset", "offset"))
    assert pi is not None
    rel = row[pi].strip()
    if not rel:
        raise ValueError("empty path")
    labels = [x.strip() for x in row[li].split(label_sep) if x.strip()] if li is not None else []
    fold = int(row[fi]) if fi is not None and row[fi].strip() else None
    verified = parse_bool(row[vi]) if vi is not None and row[vi].strip() else None
    event = None
    if oi is not None and ei is not None and row[oi].strip():
        onset, offset = float(row[oi]), float(row[ei])
        if not 0 <= onset < offset:
            raise ValueError(f"bad event times onset={onset} offset={offset}")
        event = Event(onset, offset, labels[0] if labels else "")
    return rel, labels, fold, verified, event


def read_table(
    csv_path: str | Path,
    audio_dir: str | Path | None = None,
    path_col: str | None = None,
    label_col: str | None = None,
    label_sep: str = ",",
    skipped: SkipReport | None = None,
    allow_outside_root: bool = False,
) -> tuple[list[Candidate], SkipReport]:
    """Parse rows into candidates; malformed rows go to the report with their line number.

    A path that leaves ``audio_dir`` (``../``, an absolute path, a link out) is skipped and
    reported unless ``allow_outside_root``: a listing cannot make earshot read files elsewhere."""
    csv_path = Path(csv_path)
    if not csv_path.exists():
        raise DataError(csv_path, "CSV file not found")
    audio_dir = Path(audio_dir) if audio_dir is not None else csv_path.parent
    report = skipped if skipped is not None else SkipReport()
    text = csv_path.read_text(encoding="utf-8-sig")
    delim = "\t" if text.split("\n", 1)[0].count("\t") > text.split("\n", 1)[0].count(",") else ","
    rows = csv.reader(text.splitlines(), delimiter=delim)
    try:
        header = next(rows)
    except StopIteration:
        raise DataError(csv_path, "CSV is empty") from None
    col = _columns(header, path_col, label_col, csv_path)
    root = audio_dir.resolve()
    by_path: dict[Path, Candidate] = {}
    order: list[Candidate] = []
    for line, row in enumerate(rows, 2):
        if not row or all(not x.strip() for x in row):
            continue
        if len(row) != len(header):
            report.add(csv_path, f"row has {len(row)} columns, header has {len(header)}", line)
            continue
        try:
            rel, labels, fold, verified, event = _parse_row(row, col, label_sep)
        except ValueError as e:
            report.add(csv_path, f"malformed row ({e})", line)
            continue
        f = (audio_dir / rel).resolve()
        if not allow_outside_root and not f.is_relative_to(root):
            report.add(csv_path, f"path {rel!r} leaves the audio folder {audio_dir} (allow it with "
                                 "--allow-outside-root)", line)
            continue
        si = col["split"]
        split = row[si].strip().lower() or None if si is not None else None
        if f in by_path:
            prev = by_path[f]
            if event is None:
                report.add(csv_path, f"duplicate file {rel!r} (first listed on line {prev.line})", line)
                continue
            prev.events.append(event)
            prev.labels = sorted(set(prev.labels) | set(labels))
            continue
        c = Candidate(f, labels if event is None else sorted(set(labels)), split=split, fold=fold,
                      verified=verified, events=[event] if event else [], source=str(csv_path), line=line)
        by_path[f] = c
        order.append(c)
    return order, report


def prepare_csv(
    csv_path: str | Path,
    audio_dir: str | Path | None = None,
    labels: Sequence[str] | None = None,
    path_col: str | None = None,
    label_col: str | None = None,
    label_sep: str = ",",
    strict: bool = False,
    keep_silent: bool = False,
    allow_outside_root: bool = False,
) -> PrepareResult:
    """Read a CSV listing and validate every file it names (paths inside AUDIO_DIR, unless
    --allow-outside-root)."""
    cands, report = read_table(csv_path, audio_dir, path_col, label_col, label_sep,
                               allow_outside_root=allow_outside_root)
    if strict and len(report):
        first = report.items[0]
        raise DataError(first.path, f"{first.reason} (--strict is set)", first.line)
    if not cands:
        raise DataError(csv_path, f"no usable rows ({len(report)} skipped)")
    return validate(cands, labels=labels, strict=strict, keep_silent=keep_silent, skipped=report)
