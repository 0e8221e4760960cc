"""Prediction output formats for ``earshot predict``: a table, CSV or JSON."""

from __future__ import annotations

import csv
import json
from typing import IO, Any, Iterable

from earshot.errors import AudioError


def write_predictions_stream(results: Iterable[Any], out: IO[str], fmt: str, predictor: Any, err: IO[str]) -> int:
    """Write each :class:`~earshot.inference.predictor.Prediction` as it comes; an
    :class:`AudioError` is reported on ``err``. Returns how many files failed."""
    failed = 0
    rows: list[dict[str, Any]] = []
    writer = csv.writer(out) if fmt == "csv" else None
    header_done = False
    for r in results:
        if isinstance(r, AudioError):
            failed += 1
            print(f"error: {r}", file=err)
            continue
        for note in r.notes:
            print(f"note: {r.source}: {note} (the model expects {predictor.sample_rate} Hz mono)", file=err)
        if writer is not None:
            if not header_done:  # as many label/score pairs as the first file decoded (at least one)
                width = max(1, len(r.top))
                writer.writerow(["file"] + [f"{kind}{i + 1}" for i in range(width) for kind in ("label", "score")])
                header_done = True
            writer.writerow([r.source] + [x for lab, s in r.top[:width] for x in (lab, f"{s:.4f}")])
        elif fmt == "json":
            rows.append(r.to_dict())
        else:
            shown = "  ".join(f"{lab} ({s:.3f})" for lab, s in r.top) or "(no label above its threshold)"
            print(f"{r.source}\t{shown}", file=out)
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
    return failed
