"""Clip and event records, a JSONL reader/writer, label validation and the skip report.

Every dataset layout becomes a list of :class:`Clip`; everything downstream reads only these.
Paths are stored relative to the manifest's folder and resolved when read.

A manifest's first line is a header naming its dataset root (``{"earshot_manifest": 1, "root": ...}``,
relative to the manifest's folder). A clip whose file lies outside that root (``../``, an absolute
path, a link out) is skipped and reported unless the reader allows it, so a manifest cannot make
earshot read files elsewhere. A manifest without a header is confined to its own folder.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import sys
from dataclasses import asdict, dataclass, field, fields
from itertools import islice
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
        """The record as JSON-ready values (empty fields left out), paths relative to ``root`` when given.
        Field by field rather than ``dataclasses.asdict``, which is several times slower."""
        d: dict[str, Any] = {}
        for k in _CLIP_FIELDS:
            v = getattr(self, k)
            if k == "events":
                v = [{"onset": e.onset, "offset": e.offset, "label": e.label} for e in v]
            elif k == "labels":
                v = list(v)
            elif k == "extra" and v:
                v = copy.deepcopy(v)
            if v not in (None, [], {}) or k == "labels":
                d[k] = v
        if root is not None:
            d["path"] = os.path.relpath(os.path.abspath(self.path), root)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], root: Path | None = None) -> "Clip":
        keys = d.keys()
        if not keys <= _CLIP_FIELD_SET or not _REQUIRED <= keys:
            unknown, missing = sorted(keys - _CLIP_FIELD_SET), sorted(_REQUIRED - keys)
            raise ValueError(f"unknown field(s) {unknown}" if unknown else f"missing field(s) {missing}")
        d = dict(d)
        if "annotation" in d and d["annotation"] not in (None, "weak", "strong", "unlabelled"):
            raise ValueError(f"annotation {d['annotation']!r} is not weak, strong or unlabelled")
        if "events" in d:
            d["events"] = [Event(**{**e, "label": _intern(e.get("label"))}) for e in d["events"]]
        if "labels" in d:
            labels = d["labels"]
            d["labels"] = [_intern(labels)] if isinstance(labels, str) else [_intern(lab) for lab in labels]
        for k in ("split", "annotation"):
            if k in d:
                d[k] = _intern(d[k])
        if root is not None and not os.path.isabs(d["path"]):
            d["path"] = os.path.normpath(os.path.join(root, d["path"]))
        return cls(**d)


_CLIP_FIELDS = tuple(f.name for f in fields(Clip))
_CLIP_FIELD_SET = frozenset(_CLIP_FIELDS)
_REQUIRED = frozenset({"id", "path", "duration", "sample_rate", "channels"})
_LABELS, _EVENTS = _CLIP_FIELDS.index("labels"), _CLIP_FIELDS.index("events")
_INTERNED = tuple(_CLIP_FIELDS.index(k) for k in ("split", "annotation"))


def _intern(v: Any) -> Any:
    """One shared copy of a repeated string (a label, a split); anything else unchanged."""
    return sys.intern(v) if isinstance(v, str) else v


def _pack(clip: Clip) -> bytes:
    """A clip as the pickle of a tuple of its fields (events as tuples): a third of the time of JSON
    to read back, and smaller. Only ever read by the process that wrote it (or its forks)."""
    t = [getattr(clip, k) for k in _CLIP_FIELDS]
    t[_EVENTS] = [(e.onset, e.offset, e.label) for e in clip.events]
    return pickle.dumps(tuple(t), protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(raw: Any) -> Clip:
    t = list(pickle.loads(raw))
    t[_EVENTS] = [Event(a, b, _intern(lab)) for a, b, lab in t[_EVENTS]]
    t[_LABELS] = [_intern(lab) for lab in t[_LABELS]]
    for k in _INTERNED:
        t[k] = _intern(t[k])
    return Clip(*t)


class ClipStore:
    """A read-only sequence of clips held as one block of bytes (each clip's fields, pickled) and an offset
    array, not as Python objects: nothing that the garbage collector or reference counting touches.
    A clip is rebuilt when it is indexed (microseconds, against the milliseconds of reading its audio).

    A store is written clip by clip (:meth:`writer`), so building one never holds every clip as an
    object. Once its bytes pass ``spill_bytes`` (4 MiB, some 25,000 clips) they go to an unlinked
    temporary file (in ``$EARSHOT_TMPDIR``, else the system's temporary folder) that the store
    memory-maps: the process's own memory then hardly grows however many clips the manifest holds,
    and loader workers share the mapped pages with the main process."""

    SPILL_BYTES = 4 * 2**20

    @classmethod
    def of(cls, clips: Iterable[Clip]) -> "ClipStore":
        """``clips`` as a store: the same object when it is one already."""
        return clips if isinstance(clips, ClipStore) else cls(clips)

    @classmethod
    def writer(cls, spill_bytes: int | None = None) -> "ClipStoreWriter":
        return ClipStoreWriter(cls.SPILL_BYTES if spill_bytes is None else spill_bytes)

    def __init__(self, clips: Iterable[Clip] = (), spill_bytes: int | None = None):
        w = self.writer(spill_bytes)
        for c in clips:  # one clip object alive at a time when ``clips`` is a generator
            w.append(c)
        self._blob, self._offsets, self._file = w._finish()

    @classmethod
    def _from(cls, blob: Any, offsets: Any, file: Any = None) -> "ClipStore":
        store = cls.__new__(cls)
        store._blob, store._offsets, store._file = blob, offsets, file
        return store

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> Clip:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return _unpack(self._raw(i % len(self)))

    def _raw(self, i: int) -> Any:
        return self._blob[int(self._offsets[i]) : int(self._offsets[i + 1])]

    def __iter__(self) -> Iterator[Clip]:
        return (self[i] for i in range(len(self)))

    def pairs(self) -> Iterator[tuple[Clip, bytes]]:
        """Each clip with its stored bytes, which a writer can copy without encoding the clip again."""
        for i in range(len(self)):
            raw = bytes(self._raw(i))
            yield _unpack(raw), raw

    def __bool__(self) -> bool:
        return len(self) > 0

    def __reduce__(self) -> Any:  # pickled (a spawned process): the bytes travel, not the mapping
        import numpy as np

        return ClipStore._from, (bytes(self._blob), np.array(self._offsets), None)

    @property
    def spilled(self) -> bool:
        """Whether the clips live in a memory-mapped file rather than in the process's memory."""
        return self._file is not None

    @property
    def nbytes(self) -> int:
        return len(self._blob) + self._offsets.nbytes


class ClipStoreWriter:
    """Appends clips to a :class:`ClipStore` under construction (see :meth:`ClipStore.writer`)."""

    def __init__(self, spill_bytes: int):
        from array import array

        self.spill_bytes = spill_bytes
        self._buf = bytearray()  # grown in place, until it spills
        self._file: Any = None
        self._size = 0
        self._ends = array("q", [0])  # 8 bytes an offset, no Python int per clip

    def append(self, clip: Clip, raw: bytes | None = None) -> None:
        """Add ``clip``; ``raw``, its bytes from another store (:meth:`ClipStore.pairs`), saves encoding it."""
        b = raw if raw is not None else _pack(clip)
        self._size += len(b)
        self._ends.append(self._size)
        if self._file is not None:
            self._file.write(b)
            return
        self._buf += b
        if len(self._buf) > self.spill_bytes:
            import tempfile

            self._file = tempfile.TemporaryFile(dir=os.environ.get("EARSHOT_TMPDIR") or None)
            self._file.write(self._buf)
            self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._ends) - 1

    def finish(self) -> ClipStore:
        return ClipStore._from(*self._finish())

    def _finish(self) -> tuple[Any, Any, Any]:
        import numpy as np

        if self._file is None:
            return self._buf, np.frombuffer(self._ends, np.int64), None  # no copies: they would be the peak
        import mmap

        f = self._file
        at = -(-self._size // 8) * 8  # the offsets follow the clips in the same file, 8-byte aligned
        f.write(bytes(at - self._size) + memoryview(self._ends).cast("B"))
        f.flush()
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        blob = memoryview(mm)[: self._size]
        offsets = np.frombuffer(mm, np.int64, len(self._ends), at)
        self._ends = None
        return blob, offsets, f


class _ListWriter(list):
    def append(self, clip: Clip, raw: bytes | None = None) -> None:
        super().append(clip)

    def finish(self) -> list[Clip]:
        return list(self)


def writer_like(clips: Iterable[Clip]) -> Any:
    """Something to ``append`` clips to and ``finish()``: a store's writer when ``clips`` is a
    :class:`ClipStore`, else a list, so a step over a store hands on a store."""
    return ClipStore.writer() if isinstance(clips, ClipStore) else _ListWriter()


def in_chunks(items: Iterable[Any], size: int = 4096) -> Iterator[list[Any]]:
    """``items`` as lists of up to ``size``: a step that needs a list holds one chunk at a time."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def pairs_of(clips: Iterable[Clip]) -> Iterator[tuple[Clip, bytes | None]]:
    """Each clip with its stored bytes when ``clips`` is a :class:`ClipStore` (else None)."""
    return clips.pairs() if isinstance(clips, ClipStore) else ((c, None) for c in clips)


def filter_clips(clips: Iterable[Clip], keep: Any, size: int = 4096) -> Any:
    """``keep(chunk)`` (the clips of a list to keep, in order) applied ``size`` clips at a time, so a
    step that needs a list never holds more than a chunk as objects. A :class:`ClipStore` gives a
    store (kept records copied as they are), anything else a list."""
    out = writer_like(clips)
    for chunk in in_chunks(pairs_of(clips), size):
        raw = {id(c): r for c, r in chunk}
        for c in keep([c for c, _ in chunk]):
            out.append(c, raw.get(id(c)))
    return out.finish()


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
    return _read_manifest(path, labels, allow_outside_root, skipped, list)


def read_manifest_store(path: str | Path, labels: Sequence[str] | None = None, allow_outside_root: bool = False,
                        skipped: SkipReport | None = None) -> ClipStore:
    """:func:`read_manifest` into a :class:`ClipStore`, one record at a time, so that reading even
    millions of records never holds a Python object per clip."""
    return _read_manifest(path, labels, allow_outside_root, skipped, ClipStore)


def _read_manifest(path: str | Path, labels: Sequence[str] | None, allow_outside_root: bool,
                   skipped: SkipReport | None, into: Any) -> Any:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "manifest not found")
    recorded = manifest_root(path)
    outside = SkipReport()
    clips = into(_records(path, recorded or path.parent.resolve(), allow_outside_root, outside))
    if outside.items:
        _report_outside(path, outside, bool(clips), recorded is not None, skipped)
    if not clips:
        raise DataError(path, "manifest holds no clips")
    if labels is not None:
        check_labels(clips, labels, path)
    return clips


def _records(path: Path, root: Path, allow_outside_root: bool, outside: SkipReport) -> Iterator[Clip]:
    """The clips of a manifest, one line at a time; clips outside ``root`` go to ``outside``."""
    here = path.parent.resolve()
    resolved, inside = _Resolver(), str(root).rstrip(os.sep) + os.sep
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if not line.strip() or (i == 1 and _header(line) is not None):
                continue
            try:
                clip = Clip.from_json(json.loads(line), here)
            except (ValueError, TypeError) as e:
                raise DataError(path, f"bad manifest record ({e})", i) from None
            if not allow_outside_root and not resolved(clip.path).startswith(inside):
                outside.add(path, f"clip path {clip.path} leaves the dataset root {root} "
                                  "(allow it with --allow-outside-root / data.allow_outside_root=true)", i)
                continue
            yield clip


class _Resolver:
    """``os.path.realpath`` of many files in few folders: each folder is resolved once, and a file
    costs one ``lstat`` (to see whether it is itself a link). Strings, not ``Path``s: pathlib interns
    every file name it parses, which grows Python's table of interned strings with the manifest."""

    def __init__(self) -> None:
        self._dirs: dict[str, str] = {}

    def __call__(self, p: str) -> str:
        if os.path.islink(p):
            return os.path.realpath(p)
        d, name = os.path.split(p)
        if d not in self._dirs:
            self._dirs[d] = os.path.realpath(d)
        return os.path.join(self._dirs[d], name)


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
