"""DESED / DCASE 2019 Task 4 (sound event detection in domestic environments), in its published layout.

::

    ROOT/audio/train/{weak,synthetic,unlabel_in_domain}/*.wav   ROOT/audio/validation/*.wav
    ROOT/metadata/train/weak.csv        filename<TAB>event_labels (comma-separated)
    ROOT/metadata/train/synthetic.csv   filename<TAB>onset<TAB>offset<TAB>event_label
    ROOT/metadata/validation/validation.csv   (the same strong format)

Weak clips become ``annotation="weak"`` with labels; strong files give ``annotation="strong"``
clips with events (a file listed only with empty fields is a real all-negative clip); every file
of ``unlabel_in_domain`` is ``annotation="unlabelled"``. Training kinds are split ``train``; the
validation set is ``validation_split`` (default ``test``: the seed reports its results on it).

Bad rows are reported with their file and line and skipped: an offset before its onset, a label
outside the class list, a weak row without labels. Events past the end of their clip are cut at
the end and counted; overlapping events of one class are merged and counted.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from earshot.audio.io import AUDIO_EXTENSIONS
from earshot.data.manifest import Clip, Event, SkipReport
from earshot.data.sources.common import Candidate, PrepareResult, validate
from earshot.errors import DataError

CLASSES = ("Alarm_bell_ringing", "Blender", "Cat", "Dishes", "Dog", "Electric_shaver_toothbrush", "Frying",
           "Running_water", "Speech", "Vacuum_cleaner")
STRONG_HEADER = ("filename", "onset", "offset", "event_label")
WEAK_HEADER = ("filename", "event_labels")


def _rows(path: Path, header: Sequence[str] | None, report: SkipReport) -> list[tuple[int, list[str]]]:
    """Tab-separated rows with their line numbers. With ``header``, line 1 should be it: a file
    without one is read from line 1 and noted. Without (``None``), a first line that is not data
    (its second field is not a number) is taken for a header, skipped and noted."""
    if not path.exists():
        raise DataError(path, "label file not found")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    rows = [(i, line.rstrip("\r").split("\t")) for i, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        return []
    first = [f.strip() for f in rows[0][1]]
    if header is not None:
        if first[: len(header)] == list(header):
            return rows[1:]
        report.note(path, f"no header row (expected {'<TAB>'.join(header)}): line 1 read as data", 1)
        return rows
    if len(first) > 1 and not _is_number(first[1]):
        report.note(path, f"line 1 looks like a header ({'<TAB>'.join(first)}), not data: skipped", 1)
        return rows[1:]
    return rows


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_strong(path: Path, labels: Sequence[str], report: SkipReport, header: Sequence[str] | None = STRONG_HEADER
                ) -> dict[str, list[Event]]:
    """``{filename: [Event]}`` from a strong-label file; a file with only empty fields has no events."""
    known = set(labels)
    out: dict[str, list[Event]] = {}
    off = 1 if header is not None else 0  # DESED files name the clip first; DCASE 2016 files do not
    for line, f in _rows(path, header, report):
        f = [x.strip() for x in f]
        name = f[0] if off else path.stem
        out.setdefault(name, [])
        rest = f[off:]
        if not any(rest):
            continue  # an all-negative clip
        if len(rest) < 3:
            report.add(path, f"expected onset, offset and event_label, found {len(rest)} field(s)", line)
            continue
        try:
            onset, offset = float(rest[0]), float(rest[1])
        except ValueError:
            report.add(path, f"onset/offset {rest[0]!r}/{rest[1]!r} are not numbers", line)
            continue
        label = rest[2]
        if offset < onset:
            report.add(path, f"event offset {offset} is before its onset {onset}", line)
            continue
        if label not in known:
            report.add(path, f"event label {label!r} is not in the class list", line)
            continue
        out[name].append(Event(onset, offset, label))
    return out


def read_weak(path: Path, labels: Sequence[str], report: SkipReport) -> dict[str, list[str]]:
    """``{filename: [labels]}`` from a weak-label file (labels comma-separated)."""
    known = set(labels)
    out: dict[str, list[str]] = {}
    for line, f in _rows(path, WEAK_HEADER, report):
        name = f[0].strip()
        tags = [t.strip() for t in (f[1] if len(f) > 1 else "").split(",") if t.strip()]
        if not tags:
            report.add(path, f"weak-label row for {name} has no labels", line)
            continue
        bad = [t for t in tags if t not in known]
        if bad:
            report.add(path, f"label(s) {bad} not in the class list", line)
            continue
        out[name] = sorted(set(tags))
    return out


def merge_overlaps(events: list[Event]) -> tuple[list[Event], int]:
    """Overlapping events of one class merged into one; returns the events and how many merges."""
    out: list[Event] = []
    merged = 0
    for e in sorted(events, key=lambda e: (e.label, e.onset)):
        if out and out[-1].label == e.label and e.onset <= out[-1].offset:
            out[-1] = Event(out[-1].onset, max(out[-1].offset, e.offset), e.label)
            merged += 1
        else:
            out.append(e)
    return sorted(out, key=lambda e: (e.onset, e.label)), merged


def fix_events(clips: list[Clip], report: SkipReport) -> list[Clip]:
    """Cut events at their clip's end (dropping those that start after it) and merge same-class
    overlaps; each change is noted with the clip's path."""
    out = []
    for c in clips:
        if not c.events:
            out.append(c)
            continue
        kept = []
        for e in c.events:
            if e.onset >= c.duration:
                report.note(c.path, f"event {e.label} {e.onset}-{e.offset} s starts after the clip's end "
                                    f"({c.duration:.3f} s): dropped")
            elif e.offset > c.duration + 1e-3:
                report.note(c.path, f"event {e.label} {e.onset}-{e.offset} s ends after the clip "
                                    f"({c.duration:.3f} s): cut at the end")
                kept.append(Event(e.onset, round(c.duration, 3), e.label))
            else:
                kept.append(e)
        events, merged = merge_overlaps(kept)
        if merged:
            report.note(c.path, f"{merged} overlapping event(s) of the same class merged")
        out.append(replace(c, events=events, labels=sorted({e.label for e in events})))
    return out


def _audio(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.name: p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS}


def prepare_desed(root: str | Path, validation_split: str = "test", labels: Sequence[str] = CLASSES,
                  strict: bool = False) -> PrepareResult:
    """DESED / DCASE 2019 Task 4: weak, synthetic (strong) and unlabelled training clips, strong validation clips."""
    root = Path(root)
    if not (root / "metadata").is_dir():
        raise DataError(root, "no metadata/ folder (expected the DESED layout: audio/ and metadata/)")
    report = SkipReport()
    cands: list[Candidate] = []

    def add(folder: Path, listed: dict[str, object], source: Path, split: str, kind: str) -> None:
        files = _audio(folder)
        for name, value in listed.items():
            path = files.get(name)
            if path is None:
                report.add(folder / name, f"listed in {source} but the audio file is missing")
                continue
            tags = value if kind == "weak" else sorted({e.label for e in value})  # type: ignore[union-attr]
            events = list(value) if kind == "strong" else []  # type: ignore[arg-type]
            cands.append(Candidate(path, list(tags), split=split, events=events, source=str(source),
                                   annotation=kind))

    meta = root / "metadata"
    weak = meta / "train" / "weak.csv"
    if weak.exists():
        add(root / "audio" / "train" / "weak", read_weak(weak, labels, report), weak, "train", "weak")  # type: ignore[arg-type]
    synth = meta / "train" / "synthetic.csv"
    if synth.exists():
        add(root / "audio" / "train" / "synthetic", read_strong(synth, labels, report), synth, "train", "strong")  # type: ignore[arg-type]
    val = meta / "validation" / "validation.csv"
    if val.exists():
        add(root / "audio" / "validation", read_strong(val, labels, report), val, validation_split, "strong")  # type: ignore[arg-type]
    unlabelled = root / "audio" / "train" / "unlabel_in_domain"
    for path in sorted(_audio(unlabelled).values()):
        cands.append(Candidate(path, [], split="train", annotation="unlabelled"))
    if not cands:
        raise DataError(root, "no clips found (metadata/train/weak.csv, synthetic.csv, validation/validation.csv "
                              "or audio/train/unlabel_in_domain/)")
    res = validate(cands, labels=labels, strict=strict, skipped=report)
    res.clips = fix_events(res.clips, report)
    return res
