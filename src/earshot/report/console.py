"""Text summaries a user reads in the terminal: after prepare, training, evaluation and CV.

Each returns lines, so the CLI only prints them and the library stays usable without a terminal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from earshot.atomic import read_json
from earshot.data.manifest import summarize


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "-" if v is None else str(v)


def _splits(splits: dict[str, int]) -> str:
    return ", ".join(f"{k if k != 'None' else 'unsplit'} {v}" for k, v in sorted(splits.items()))


def prepare_lines(title: str, result: Any, out: Path, report: Path) -> list[str]:
    """What ``earshot prepare`` found: clips, classes, hours, splits and folds, skipped files by reason."""
    s = summarize(result.clips) if result.clips else {"clips": 0, "classes": 0, "hours": 0, "splits": {}, "folds": {}}
    lines = [f"{title}: wrote {out}",
             f"  clips: {s['clips']}   classes: {s['classes']}   hours: {s['hours']:.3f}   splits: {_splits(s['splits'])}"]
    if s.get("folds"):
        lines.append("  folds: " + ", ".join(f"{k}: {v}" for k, v in sorted(s["folds"].items())))
    if s.get("multi_label"):
        lines.append(f"  multi-label: {s['multi_label']} clip(s) with several labels, {s['no_label']} with none")
    n = len(result.skipped)
    if getattr(result, "excluded", 0):
        lines.append(f"  excluded by option: {result.excluded}")
    lines.append(f"  skipped: {n}" + (f"  (report: {report})" if n else ""))
    for reason, k in sorted(result.skipped.reasons().items(), key=lambda kv: -kv[1]):
        lines.append(f"    {k:5d}  {reason}")
    lines += [f"    - {item}" for item in result.skipped.items[:10]]
    if n > 10:
        lines.append(f"    ... and {n - 10} more")
    notes = result.skipped.notes
    lines += [f"  note: {item}" for item in notes[:10]]
    if len(notes) > 10:
        lines.append(f"  ... and {len(notes) - 10} more notes in the report")
    return lines


def metric_lines(report: dict[str, Any], indent: str = "  ") -> list[str]:
    """The task's headline metrics, one per line."""
    return [f"{indent}{k:18s} {_fmt(report.get(k))}" for k in report["headline"] if k in report]


def run_lines(run: Path) -> list[str]:
    """After training: time, split, headline metrics, where things are, what to try next."""
    summary = read_json(run / "summary.json", "the run's summary")
    metrics = read_json(run / "metrics.json", "the run's metrics")
    lines = ["", f"done in {summary['train_seconds']:.0f} s ({metrics['fit_seconds']:.0f} s of training); "
                 f"{summary['task']} evaluated on the {summary['split']} split ({metrics['n_clips']} clips)",
             *metric_lines(metrics)]
    if metrics.get("baseline"):
        from earshot.training.baseline import compare_lines

        lines += compare_lines(metrics, metrics["baseline"], metrics["headline"][0])
    if summary["skipped"]:
        lines.append(f"  skipped {summary['skipped']} clip(s): see {run / 'skipped.json'}")
    ckpt = run / "checkpoints" / "best.ckpt"
    verb = summary.get("verb", "predict")
    lines += [f"  run folder: {run}", f"  checkpoint: {ckpt}", f"  try:        earshot {verb} {ckpt} FILE.wav"]
    return lines


def evaluation_lines(report: dict[str, Any], checkpoint: str, manifest: str, split: str | None) -> list[str]:
    lines = [f"evaluate {checkpoint} on {manifest}" + (f" (split {split})" if split else ""),
             f"  clips: {report['n_clips']}   skipped: {report['skipped']}", *metric_lines(report)]
    if report.get("files"):
        lines.append("  wrote " + ", ".join(report["files"].values()))
    return lines


def cv_lines(summary: dict[str, Any]) -> list[str]:
    keys = summary["headline"]
    lines = ["", f"{len(summary['folds'])}-fold cross-validation ({summary['train_seconds']:.0f} s of training)"]
    for r in summary["folds"]:
        lines.append(f"  fold {r['fold']}: {keys[0]} {_fmt(r.get(keys[0]))}   {r['run']}")
    for k in keys:
        if k in summary:
            lines.append(f"  {k:18s} {summary[k]['mean']:.4f} ± {summary[k]['std']:.4f}")
    lines.append(f"  summary: {summary['summary_file']}")
    return lines
