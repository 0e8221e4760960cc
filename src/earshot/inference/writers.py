"""Output formats: ``earshot predict`` (a table, CSV or JSON) and ``earshot detect`` (a DCASE event list or JSON)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

import numpy as np

from earshot.atomic import atomic_write_text
from earshot.errors import AudioError


def _readable(results: Iterable[Any], predictor: Any, err: IO[str], failures: list[AudioError],
              notes: bool = True) -> Iterator[Any]:
    """The results that are not errors; each :class:`AudioError` goes to ``err`` and ``failures``,
    and each result's notes (resampled, mixed down) to ``err``."""
    for r in results:
        if isinstance(r, AudioError):
            failures.append(r)
            print(f"error: {r}", file=err)
            continue
        for note in (r.notes if notes else []):
            print(f"note: {r.source}: {note} (the model expects {predictor.sample_rate} Hz mono)", file=err)
        yield r


def write_predictions_stream(results: Iterable[Any], out: IO[str], fmt: str, predictor: Any, err: IO[str],
                             top_k: int | None = None) -> int:
    """Write each :class:`~earshot.inference.predictor.Prediction` as it comes; an
    :class:`AudioError` is reported on ``err``. Returns how many files failed.

    A CSV row has as many label/score pairs as the task can decode at most (top-k for a
    classifier, every tag for a tagger); shorter rows are padded with empty cells.
    """
    rows: list[dict[str, Any]] = []
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        width = len(predictor.task.decode(np.ones(len(predictor.labels)), top_k))
        writer.writerow(["file"] + [f"{kind}{i + 1}" for i in range(width) for kind in ("label", "score")])
    failures: list[AudioError] = []
    for r in _readable(results, predictor, err, failures):
        if writer is not None:
            cells = [x for lab, s in r.top[:width] for x in (lab, f"{s:.4f}")]
            writer.writerow([r.source] + cells + [""] * (2 * width - len(cells)))
        elif fmt == "json":
            rows.append(r.to_dict())
        else:
            shown = "  ".join(f"{lab} ({s:.3f})" for lab, s in r.top) or "(no label above its threshold)"
            print(f"{r.source}\t{shown}", file=out)
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
    return len(failures)


def write_windows_stream(results: Iterable[Any], out: IO[str], fmt: str, predictor: Any, err: IO[str],
                         top_k: int | None = None) -> int:
    """Write each window's :class:`~earshot.inference.results.WindowScores` as it comes: CSV with
    ``file,start,end`` and one column per label, JSON lines (one object per window: the file can be
    hours long, so nothing is held back), or a table of each window's decoded labels. Returns how
    many files failed."""
    labels = predictor.labels
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(["file", "start", "end"] + list(labels))
    failures: list[AudioError] = []
    for r in _readable(results, predictor, err, failures, notes=False):
        if writer is not None:
            writer.writerow([r.source, f"{r.start:.3f}", f"{r.end:.3f}"] + [f"{v:.4f}" for v in r.probs])
        elif fmt == "json":
            out.write(json.dumps({"file": r.source, "start": round(r.start, 3), "end": round(r.end, 3),
                                  "scores": {lab: round(float(v), 6) for lab, v in zip(labels, r.probs)}}) + "\n")
        else:
            shown = "  ".join(f"{lab} ({s:.3f})" for lab, s in predictor.task.decode(r.probs, top_k)) or "-"
            print(f"{r.source}\t{r.start:9.3f}\t{r.end:9.3f}\t{shown}", file=out)
    return len(failures)


def event_rows(file: str, events: Sequence[Sequence[Any]]) -> list[str]:
    """DCASE event-list lines ``filename<TAB>onset<TAB>offset<TAB>event_label`` for one file."""
    return [f"{file}\t{e[0]:.3f}\t{e[1]:.3f}\t{e[2]}" for e in events]


def write_event_list(path: str | Path, events: Iterable[tuple[str, Sequence[Sequence[Any]]]]) -> Path:
    """A tab-separated DCASE event list with a header, from ``(file, events)`` pairs."""
    lines = ["filename\tonset\toffset\tevent_label"]
    for file, evs in events:
        lines += event_rows(file, evs)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return Path(path)


def write_detections_stream(results: Iterable[Any], out: IO[str], fmt: str, predictor: Any, err: IO[str]) -> int:
    """Write each :class:`~earshot.inference.predictor.Detection` as it comes: a DCASE event list
    (``tsv``; a file without events writes no row) or JSON with each event's confidence.
    Returns how many files failed."""
    rows: list[dict[str, Any]] = []
    if fmt == "tsv":
        print("filename\tonset\toffset\tevent_label", file=out)
    failures: list[AudioError] = []
    for r in _readable(results, predictor, err, failures):
        if fmt == "json":
            rows.append(r.to_dict())
        else:
            for line in event_rows(r.source, r.events):
                print(line, file=out)
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
    return len(failures)
