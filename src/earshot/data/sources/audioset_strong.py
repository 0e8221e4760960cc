"""AudioSet strong labels as extra training data for a task's classes (seed 003's recipe).

Inputs, as Google publishes them (research.google.com/audioset/download_strong.html):

- ``audioset_train_strong.tsv``: ``segment_id  start_time_seconds  end_time_seconds  label``, one
  row per event; ``segment_id`` is ``<YouTube id>_<start ms>`` and times are seconds within that
  10 s segment; ``label`` is a MID such as ``/m/05tny_``.
- ``mid_to_display_name.tsv``: ``MID  display name``.
- A mapping from AudioSet labels (display names or MIDs) to the task's classes, as JSON or YAML:
  ``{"Bark": "Barking", "Howl": "Howling", "/m/0838f": "Other"}``. Labels it leaves out are ignored.

Each segment with at least one mapped event becomes a clip with strong events and its classes as
labels. ``include`` keeps only those classes (the others' events are dropped); ``exclude`` drops
every segment that has one of those classes (the seed kept only non-dog segments);
``single_label`` keeps segments with exactly one class, for classification.

**The audio is the user's step**: AudioSet ships no audio. Download each segment (e.g. with
yt-dlp, cutting 10 s from its start time) to ``AUDIO_DIR/<segment_id>.wav`` (or .flac/.ogg/.mp3);
segments whose file is missing are listed in the skip report, so that report doubles as the list
of what to fetch. Rows with a MID absent from ``mid_to_display_name.tsv`` are skipped and counted,
as are malformed rows (with their line).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from earshot.audio.io import AUDIO_EXTENSIONS
from earshot.data.manifest import Event, SkipReport
from earshot.data.sources.common import Candidate, PrepareResult, validate
from earshot.errors import DataError


def read_names(path: Path) -> dict[str, str]:
    """MID -> display name (a header line, if any, is ignored)."""
    out = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.rstrip("\n").split("\t")
        if len(parts) >= 2 and parts[0].startswith("/"):
            out[parts[0]] = parts[1].strip()
    if not out:
        raise DataError(path, "no 'MID<TAB>display name' rows")
    return out


def read_mapping(path: Path, names: dict[str, str]) -> dict[str, str]:
    """MID -> task class, from a JSON or YAML file keyed by display names or MIDs."""
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix == ".json" else __import__("yaml").safe_load(text)
    except Exception as e:
        raise DataError(path, f"not a JSON or YAML mapping ({e})") from None
    if not isinstance(raw, dict) or not raw:
        raise DataError(path, "the mapping must be a non-empty {AudioSet label: task class} dictionary")
    by_name = {n.lower(): m for m, n in names.items()}
    out = {}
    for key, cls in raw.items():
        mid = key if key in names else by_name.get(str(key).lower())
        if mid is None:
            raise DataError(path, f"{key!r} is neither a MID nor a display name in mid_to_display_name.tsv")
        if cls is not None:
            out[mid] = str(cls)
    return out


def _audio(audio_dir: Path, segment: str) -> Path:
    for ext in AUDIO_EXTENSIONS:
        p = audio_dir / f"{segment}{ext}"
        if p.exists():
            return p
    return audio_dir / f"{segment}.wav"  # missing: validate() reports it


def prepare_audioset_strong(tsv: str | Path, names: str | Path, mapping: str | Path, audio_dir: str | Path,
                            include: list[str] | None = None, exclude: list[str] | None = None,
                            single_label: bool = False, split: str = "train", strict: bool = False) -> PrepareResult:
    """Segments of the AudioSet strong-label TSV whose events map to the task's classes."""
    tsv, audio_dir = Path(tsv), Path(audio_dir)
    mids = read_names(Path(names))
    to_class = read_mapping(Path(mapping), mids)
    report = SkipReport()
    events: dict[str, list[Event]] = defaultdict(list)
    lines: dict[str, int] = {}
    unknown = 0
    with open(tsv, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if i == 1 and parts[0] == "segment_id":
                continue
            if not line.strip():
                continue
            if len(parts) != 4:
                report.add(tsv, f"expected 4 tab-separated fields, got {len(parts)}", i)
                continue
            seg, on, off, mid = parts
            try:
                onset, offset = float(on), float(off)
            except ValueError:
                report.add(tsv, f"times {on!r}, {off!r} are not numbers", i)
                continue
            if mid not in mids:
                unknown += 1
                report.add(tsv, f"unknown MID {mid!r} (not in {Path(names).name})", i)
                continue
            if mid not in to_class:
                continue
            if offset <= onset:
                report.add(tsv, f"event offset {offset} is not after its onset {onset}", i)
                continue
            events[seg].append(Event(onset, offset, to_class[mid]))
            lines.setdefault(seg, i)
    keep, drop = set(include or []), set(exclude or [])
    cands, excluded = [], 0
    for seg, evs in events.items():
        if keep:
            evs = [e for e in evs if e.label in keep]
        classes = sorted({e.label for e in evs})
        if not classes or (drop & set(classes)) or (single_label and len(classes) != 1):
            excluded += 1
            continue
        cands.append(Candidate(path=_audio(audio_dir, seg), labels=classes, events=sorted(evs, key=lambda e: e.onset),
                               split=split, annotation="strong", source=str(tsv), line=lines[seg],
                               extra={"audioset_segment": seg}))
    if not cands:
        raise DataError(tsv, "no segment has an event of a mapped class (check the mapping and include/exclude)")
    res = validate(cands, strict=strict, skipped=report)
    res.excluded = excluded
    if unknown:
        report.note(tsv, f"{unknown} row(s) with unknown MIDs skipped (each listed above)")
    return res
