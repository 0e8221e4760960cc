"""Evaluate a checkpoint on a manifest and write metrics and figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from earshot.atomic import atomic_write_text
from earshot.data.manifest import SkipReport, read_manifest, select
from earshot.errors import DataError
from earshot.inference.predictor import Predictor
from earshot.inference.writers import write_event_list
from earshot.tasks import Task


def write_evaluation(report: dict[str, Any], out_dir: str | Path, task: Task, prefix: str = "") -> dict[str, Path]:
    """``metrics.json`` and the task's figures (e.g. class-wise accuracy, per-class AUC) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / f"{prefix}metrics.json"}
    events = report.pop("events", None)  # detection: decoded events per clip, written as a DCASE event list
    if events is not None:
        paths["events"] = write_event_list(out / f"{prefix}events.tsv", events.items())
        report["event_list"] = str(paths["events"])
    atomic_write_text(paths["metrics"], json.dumps(report, indent=2))
    paths.update(task.plots(report, out, prefix))
    return paths


def evaluate_checkpoint(checkpoint: str | Path, manifest: str | Path, split: str | None = None,
                        out_dir: str | Path | None = None, device: str | None = None,
                        precision: str = "fp32", allow_outside_root: bool = False,
                        hop_seconds: float | None = None) -> dict[str, Any]:
    """Metrics of ``checkpoint`` on the clips of ``manifest`` (one split, or all), written to ``out_dir``.
    Evaluation runs in float32 by default, so reported figures do not depend on the machine.
    ``hop_seconds`` overrides the checkpoint's seconds between the windows of a clip longer than one
    window: a shorter hop averages more windows for every frame (and costs as many more)."""
    pred = Predictor.load(checkpoint, device, precision)
    if hop_seconds is not None:
        pred.set_hop(hop_seconds)
    skipped = SkipReport()
    clips = select(read_manifest(manifest, allow_outside_root=allow_outside_root, skipped=skipped), split)
    if not clips:
        raise DataError(manifest, f"no clips in split {split!r}")
    report = pred.evaluate(clips, skipped, pictures=Path(out_dir) / "events" if out_dir is not None else None)
    report["split"] = split
    report["checkpoint"] = str(checkpoint)
    if out_dir is not None:
        paths = write_evaluation(report, out_dir, pred.task)
        if len(skipped):
            skipped.write(Path(out_dir) / "eval_skipped.json")
        report["files"] = {k: str(v) for k, v in paths.items()}
    return report
