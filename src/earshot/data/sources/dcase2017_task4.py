"""DCASE 2017 Task 4 (large-scale weakly supervised sound event detection for smart cars), weak labels.

Label files ``groundtruth_weak_label_{training,testing,evaluation}_set.csv`` hold one row per label:
``YouTube ID, start, end, label`` (tab-separated; labels such as ``Air horn, truck horn`` contain
commas). The rows of one clip are merged into a multi-label clip. Audio files are found anywhere
under ROOT by name: ``Y<id>_<start>_<end>.wav`` as distributed, or ``<id>_<start>_<end>.wav``.
The training set is ``train``, the testing set ``val`` and the evaluation set ``test``.
"""

from __future__ import annotations

from pathlib import Path

from earshot.audio.io import AUDIO_EXTENSIONS
from earshot.data.manifest import SkipReport
from earshot.data.sources.common import Candidate, PrepareResult, validate
from earshot.errors import DataError

CLASSES = ("Train horn", "Air horn, truck horn", "Car alarm", "Reversing beeps", "Ambulance (siren)",
           "Police car (siren)", "Fire engine, fire truck (siren)", "Civil defense siren", "Screaming", "Bicycle",
           "Skateboard", "Car", "Car passing by", "Bus", "Truck", "Motorcycle", "Train")
FILES = {"train": "groundtruth_weak_label_training_set.csv", "val": "groundtruth_weak_label_testing_set.csv",
         "test": "groundtruth_weak_label_evaluation_set.csv"}


def _fields(line: str) -> list[str]:
    """Tab-separated, or comma-separated with everything after the third comma as the label."""
    parts = line.rstrip("\r\n").split("\t") if "\t" in line else line.rstrip("\r\n").split(",", 3)
    return [p.strip().strip('"') for p in parts]


def read_weak_labels(path: Path, split: str, index: dict[str, Path], report: SkipReport) -> list[Candidate]:
    """Rows of one label file, merged per clip; bad rows are reported with their line."""
    by_clip: dict[str, Candidate] = {}
    known = set(CLASSES)
    for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        f = _fields(line)
        if len(f) != 4:
            report.add(path, f"expected 4 fields (YouTube ID, start, end, label), found {len(f)}", line_no)
            continue
        ytid, start, end, label = f
        try:
            s, e = float(start), float(end)
        except ValueError:
            if line_no == 1:
                continue  # a header row
            report.add(path, f"start/end {start!r}/{end!r} are not numbers", line_no)
            continue
        if not label:
            report.add(path, "empty label", line_no)
            continue
        if label not in known:
            report.add(path, f"unknown label {label!r} (not one of the 17 DCASE 2017 Task 4 classes)", line_no)
            continue
        stem = ytid[:-4] if ytid.lower().endswith(".wav") else ytid
        names = [stem, f"Y{stem}_{s:.3f}_{e:.3f}", f"{stem}_{s:.3f}_{e:.3f}", f"Y{stem}"]
        audio = next((index[n] for n in names if n in index), None)
        if audio is None:
            report.add(path, f"no audio file for {ytid} {start}-{end} (looked for {names[1]}.wav)", line_no)
            continue
        c = by_clip.get(str(audio))
        if c is None:
            c = by_clip[str(audio)] = Candidate(audio, [], split=split, extra={"youtube_id": stem, "start": s,
                                                                                "end": e}, source=str(path),
                                                line=line_no)
        if label not in c.labels:
            c.labels.append(label)
    return list(by_clip.values())


def prepare_dcase2017_task4(root: str | Path, strict: bool = False) -> PrepareResult:
    """DCASE 2017 Task 4 weak labels (17 classes), multi-label; training/testing/evaluation -> train/val/test."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a directory")
    index = {p.stem: p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()}
    report = SkipReport()
    cands: list[Candidate] = []
    found = False
    for split, name in FILES.items():
        hits = sorted(root.rglob(name))
        if hits:
            found = True
            cands += read_weak_labels(hits[0], split, index, report)
    if not found:
        raise DataError(root, f"no weak-label file found (expected {FILES['train']})")
    if not cands:
        raise DataError(root, f"no usable rows ({len(report)} skipped)")
    return validate(cands, labels=CLASSES, strict=strict, skipped=report)
