"""Clip and event records, a JSONL reader/writer, label validation and the skip report.

Every dataset layout becomes a list of :class:`Clip`; everything downstream reads only these.
Paths are stored relative to the manifest's folder and resolved when read.

A manifest's first line is a header naming its dataset root (``{"earshot_manifest": 1, "root": ...}``,
relative to the manifest's folder). A clip whose file lies outside that root (``../``, an absolute
path, a link out) is skipped and reported unless the reader allows it, so a manifest cannot make
earshot read files elsewhere. A manifest without a header is confined to its own folder.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from earshot.atomic import atomic_write_text
from earshot.errors import DataError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Event:
    """A strong label: ``label`` sounds from ``onset`` to ``offset`` seconds."""

    onset: float
    offset: float
    label: str


@dataclass(slots=True)
class Clip:
    """One audio file with its labels. Single-label, multi-label and detection share it.

    Slotted, and read with its repeated strings (split, labels, kinds) interned, so a large manifest
    costs a few hundred bytes a clip in memory rather than a kilobyte or more."""

    id: str
    path: str
    duration: float
    sample_rate: int
    channels: int
    labels: list[str] = field(default_factory=list)
    split: str | None = None
    fold: int | None = None
    verified: bool | None = None
    weight: float = 1.0
    events: list[Event] = field(default_factory=list)
    annotation: str | None = None  # detection: "weak", "strong" or "unlabelled"; None: strong if it has events
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, root: Path | None = None) -> dict[str, Any]:
        d = asdict(self)
        if root is not None:
            d["path"] = os.path.relpath(os.path.abspath(self.path), root)
        return {k: v for k, v in d.items() if v not in (None, [], {}) or k == "labels"}

    @classmethod
    def from_json(cls, d: dict[str, Any], root: Path | None = None) -> "Clip":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}")
        missing = {"id", "path", "duration", "sample_rate", "channels"} - set(d)
        if missing:
            raise ValueError(f"missing field(s) {sorted(missing)}")
        d = dict(d)
        if d.get("annotation") not in (None, "weak", "strong", "unlabelled"):
            raise ValueError(f"annotation {d['annotation']!r} is not weak, strong or unlabelled")
        d["events"] = [Event(**{**e, "label": _intern(e.get("label"))}) for e in d.get("events", [])]
        if isinstance(d.get("labels"), str):
            d["labels"] = [d["labels"]]
        if "labels" in d:
            d["labels"] = [_intern(lab) for lab in d["labels"]]
        for k in ("split", "annotation"):
            d[k] = _intern(d.get(k))
        if root is not None and not os.path.isabs(d["path"]):
            d["path"] = os.path.normpath(os.path.join(root, d["path"]))
        return cls(**d)


def _intern(v: Any) -> Any:
    """One shared copy of a repeated string (a label, a split); anything else unchanged."""
    return sys.intern(v) if isinstance(v, str) else v


class ClipStore:
    """A read-only sequence of clips held as one block of bytes (each clip's JSON) and an offset
    array, not as Python objects: about 200 bytes a clip instead of a few kilobytes, and nothing
    that the garbage collector or reference counting touches. Loader worker processes share it
    with the main process page for page, so their memory does not grow with the dataset. A clip is
    rebuilt when it is indexed (microseconds, against the milliseconds of reading its audio)."""

    @classmethod
    def of(cls, clips: Iterable[Clip]) -> "ClipStore":
        """``clips`` as a store: the same object when it is one already."""
        return clips if isinstance(clips, ClipStore) else cls(clips)

    def __init__(self, clips: Iterable[Clip]):
        import numpy as np

        blob, ends = bytearray(), [0]  # grown in place: no list of per-clip bytes at the peak
        for c in clips:
            blob += json.dumps(c.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
            ends.append(len(blob))
        self._offsets = np.asarray(ends, np.int64)
        self._blob = bytes(blob)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> Clip:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return Clip.from_json(json.loads(self._blob[self._offsets[i] : self._offsets[i + 1]]))

    def __iter__(self) -> Iterator[Clip]:
        return (self[i] for i in range(len(self)))

    @property
    def nbytes(self) -> int:
        return len(self._blob) + self._offsets.nbytes


@dataclass
class Skipped:
    """One input that was left out, and why."""

    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


@dataclass
class SkipReport:
    """Inputs left out of a dataset, so that nothing is lost silently."""

    items: list[Skipped] = field(default_factory=list)
    notes: list[Skipped] = field(default_factory=list)  # kept, but worth a look

    def note(self, path: str | Path, reason: str, line: int | None = None) -> None:
        self.notes.append(Skipped(str(path), reason, line))

    def add(self, path: str | Path, reason: str, line: int | None = None) -> None:
        self.items.append(Skipped(str(path), reason, line))

    def __len__(self) -> int:
        return len(self.items)

    def extend(self, other: "SkipReport") -> None:
        self.items.extend(other.items)
        self.notes.extend(other.notes)

    def reasons(self) -> dict[str, int]:
        """Counts per kind of reason (the text before any parenthesis or colon)."""
        out: dict[str, int] = {}
        for s in self.items:
            key = s.reason.split("(")[0].split(":")[0].strip()
            out[key] = out.get(key, 0) + 1
        return out

    def write(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps({"count": len(self), "by_reason": self.reasons(),
                                          "skipped": [asdict(s) for s in self.items],
                                          "notes": [asdict(s) for s in self.notes]}, indent=2))


HEADER_KEY = "earshot_manifest"
MANIFEST_VERSION = 1


def write_manifest(path: str | Path, clips: Iterable[Clip], root: str | Path | None = None) -> Path:
    """Write clips as JSONL, one record per line, paths relative to the manifest's folder.

    The header records the dataset root: ``root``, or by default the deepest folder holding every
    clip's file (what ``earshot prepare`` was pointed at)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    here = path.parent.resolve()
    clips = list(clips)
    if root is None:
        root = os.path.commonpath([os.path.dirname(os.path.abspath(c.path)) for c in clips]) if clips else here
    header = {HEADER_KEY: MANIFEST_VERSION, "root": os.path.relpath(os.path.abspath(root), here)}
    lines = [json.dumps(header)] + [json.dumps(c.to_json(here), ensure_ascii=False) for c in clips]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def manifest_root(path: str | Path) -> Path | None:
    """The dataset root a manifest's header names (None when it has no header)."""
    path = Path(path)
    with open(path) as f:
        header = _header(f.readline())
    if header is None or not isinstance(header.get("root"), str):
        return None
    return Path(os.path.realpath(path.parent.resolve() / header["root"]))


def _header(line: str) -> dict[str, Any] | None:
    if HEADER_KEY not in line:
        return None
    try:
        d = json.loads(line)
    except ValueError:
        return None
    return d if isinstance(d, dict) and HEADER_KEY in d else None


def read_manifest(path: str | Path, labels: Sequence[str] | None = None, allow_outside_root: bool = False,
                  skipped: SkipReport | None = None) -> list[Clip]:
    """Read a JSONL manifest. Malformed lines raise :class:`DataError` naming file and line.

    With ``labels``, every clip's labels must be in that list. A clip outside the dataset root (see
    the module's note) goes to ``skipped`` with its line, and is logged, unless ``allow_outside_root``.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "manifest not found")
    here = path.parent.resolve()
    recorded = manifest_root(path)
    root = recorded or here
    clips, outside = [], SkipReport()
    resolved = _Resolver()
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if not line.strip() or (i == 1 and _header(line) is not None):
                continue
            try:
                clip = Clip.from_json(json.loads(line), here)
            except (ValueError, TypeError) as e:
                raise DataError(path, f"bad manifest record ({e})", i) from None
            if not allow_outside_root and not resolved(clip.path).is_relative_to(root):
                outside.add(path, f"clip path {clip.path} leaves the dataset root {root} "
                                  "(allow it with --allow-outside-root / data.allow_outside_root=true)", i)
                continue
            clips.append(clip)
    if outside.items:
        _report_outside(path, outside, bool(clips), recorded is not None, skipped)
    if not clips:
        raise DataError(path, "manifest holds no clips")
    if labels is not None:
        check_labels(clips, labels, path)
    return clips


class _Resolver:
    """``os.path.realpath`` of many files in few folders: each folder is resolved once, and a file
    costs one ``lstat`` (to see whether it is itself a link)."""

    def __init__(self) -> None:
        self._dirs: dict[str, str] = {}

    def __call__(self, p: str) -> Path:
        if os.path.islink(p):
            return Path(os.path.realpath(p))
        d, name = os.path.split(p)
        if d not in self._dirs:
            self._dirs[d] = os.path.realpath(d)
        return Path(self._dirs[d], name)


def _report_outside(path: Path, outside: SkipReport, some_left: bool, has_root: bool,
                    skipped: SkipReport | None) -> None:
    first = outside.items[0]
    if not some_left:
        hint = ("" if has_root else "; this manifest records no dataset root (written before earshot "
                "recorded one?): re-run `earshot prepare`, which records it")
        raise DataError(path, f"every clip lies outside the dataset root, e.g. {first.reason}{hint}", first.line)
    log.warning("%s: %d clip(s) outside the dataset root skipped, e.g. line %s", path, len(outside), first.line)
    if skipped is not None:
        skipped.extend(outside)


def check_labels(clips: Sequence[Clip], labels: Sequence[str], source: str | Path = "manifest") -> None:
    """Raise :class:`DataError` for the first clip with a label outside ``labels``."""
    known = set(labels)
    for i, c in enumerate(clips, 1):
        bad = [lab for lab in c.labels + [e.label for e in c.events] if lab not in known]
        if bad:
            raise DataError(source, f"clip {c.id!r} has label(s) {bad} not in the label list", i)


def label_list(clips: Iterable[Clip]) -> list[str]:
    """Sorted labels used by ``clips`` (weak labels and event labels)."""
    out: set[str] = set()
    for c in clips:
        out.update(c.labels)
        out.update(e.label for e in c.events)
    return sorted(out)


def select(clips: Iterable[Clip], split: str | None = None, folds: Sequence[int] | None = None) -> list[Clip]:
    """Clips of one split and/or some folds."""
    out = list(clips)
    if split is not None:
        out = [c for c in out if c.split == split]
    if folds is not None:
        fs = set(folds)
        out = [c for c in out if c.fold in fs]
    return out


def duration_notes(clips: Sequence[Clip], report: SkipReport, ratio: float = 10.0) -> None:
    """Note clips over ``ratio`` times the median duration: kept, but a user should know."""
    if len(clips) < 3:
        return
    med = sorted(c.duration for c in clips)[len(clips) // 2]
    for c in clips:
        if c.duration > ratio * med:
            report.note(c.path, f"long clip: {c.duration:.1f} s against a median of {med:.2f} s "
                                "(training crops it; evaluation averages its windows)")


def summarize(clips: Sequence[Clip]) -> dict[str, Any]:
    """Counts a user wants to see after ``prepare``: clips, classes, hours, per split."""
    splits: dict[str, int] = {}
    folds: dict[int, int] = {}
    for c in clips:
        splits[str(c.split)] = splits.get(str(c.split), 0) + 1
        if c.fold is not None:
            folds[c.fold] = folds.get(c.fold, 0) + 1
    return {
        "clips": len(clips),
        "classes": len(label_list(clips)),
        "hours": round(sum(c.duration for c in clips) / 3600.0, 4),
        "splits": splits,
        "folds": folds,
        "multi_label": sum(len(c.labels) > 1 for c in clips),
        "no_label": sum(not c.labels for c in clips),
    }
