"""k-fold cross-validation: one training run per held-out fold, then mean and spread."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from earshot.atomic import atomic_write_text, read_json
from earshot.config import RunConfig
from earshot.distributed import is_rank_zero
from earshot.errors import ConfigError
from earshot.training.run import train


def parse_folds(args: Sequence[str]) -> tuple[list[int], list[str]]:
    """Split ``folds=1,2,3`` (or ``folds=[1,2,3]``) out of ``key=value`` arguments."""
    folds_arg = [a for a in args if a.startswith("folds=")]
    rest = [a for a in args if not a.startswith("folds=")]
    if not folds_arg:
        raise ConfigError("cv needs folds=1,2,3,4,5 (the folds to hold out in turn)")
    try:
        folds = [int(f) for f in folds_arg[-1].split("=", 1)[1].strip("[]").split(",") if f.strip()]
    except ValueError:
        raise ConfigError(f"{folds_arg[-1]!r}: folds are whole numbers, e.g. folds=1,2,3,4,5") from None
    if not folds:
        raise ConfigError("folds= lists no fold")
    return folds, rest


def cross_validate(cfg: RunConfig, folds: Sequence[int], val_fraction: float | None = None) -> dict[str, Any]:
    """Train once per fold in ``folds`` with that fold as the test split; summarise the task's
    headline metrics over folds.

    Validation comes from ``data.val_folds`` if set, else is carved from the training folds.
    Writes ``OUT_DIR/NAME-cv.json`` and returns the summary.
    """
    runs = []
    headline: list[str] = []
    for k in folds:
        data = replace(cfg.data, test_folds=[int(k)],
                       val_fraction=cfg.data.val_fraction if val_fraction is None else val_fraction)
        run = train(replace(cfg, name=f"{cfg.name}-fold{k}", data=data))
        if not is_rank_zero():  # under DDP rank zero evaluates and summarises
            continue
        m = read_json(run / "metrics.json", "the run's metrics")
        headline = m["headline"]
        runs.append({"fold": int(k), "run": str(run), "train_seconds": m.get("train_seconds"),
                     **{key: m[key] for key in headline if m.get(key) is not None}})
    if not is_rank_zero():
        return {}
    summary: dict[str, Any] = {"name": cfg.name, "headline": headline, "folds": runs}
    for key in headline:
        vals = [r[key] for r in runs if key in r]
        if vals:
            summary[key] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "values": vals}
    summary["train_seconds"] = float(sum(r["train_seconds"] or 0 for r in runs))
    out = Path(cfg.out_dir) / f"{cfg.name}-cv.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(summary, indent=2))
    summary["summary_file"] = str(out)
    return summary
