"""Compare registry models on real data: parameters, MACs per second of audio, accuracy, train time.

    python benchmarks/compare_models.py [--models a,b] [--datasets dcase2016,fsdd] [--folds 1,2,3,4,5]
                                        [key=value ...]

dcase2016: stratified 5-fold CV on ../shared/data/dcase2016-task2/train/sound (recipes/dcase2016_events.yaml).
fsdd: official split of ../shared/data/free-spoken-digit (recipes/fsdd.yaml).
Every model uses the recipe's front-end and schedule; only model.name changes. Prints one
markdown row per model and dataset, and writes all figures as JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from earshot.config import load_config
from earshot.models.profile import model_cost
from earshot.models.registry import create_model, list_models
from earshot.training.cv import cross_validate
from earshot.training.run import train

REPO = Path(__file__).resolve().parents[1]
RECIPES = {"dcase2016": "recipes/dcase2016_events.yaml", "fsdd": "recipes/fsdd.yaml"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(list_models()))
    ap.add_argument("--datasets", default="dcase2016,fsdd")
    ap.add_argument("--folds", default="1,2,3,4,5")
    ap.add_argument("--out-dir", default="/tmp/earshot-bench")
    ap.add_argument("--json", default=None, help="append results to this JSON-lines file")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    os.chdir(REPO)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print("| dataset | model | params | MMAC/s audio | accuracy | train time |")
    print("|---|---|---|---|---|---|")
    for ds in a.datasets.split(","):
        for name in a.models.split(","):
            over = ["trainer.progress_bar=false", f"model.name={name}", f"out_dir={a.out_dir}", *a.overrides]
            cfg = load_config(REPO / RECIPES[ds], over)
            cost = model_cost(create_model(name, 10, frontend=cfg.model.frontend))
            t = time.time()
            if ds == "dcase2016":
                s = cross_validate(cfg, [int(f) for f in a.folds.split(",")])
                acc, spread = s["accuracy"]["mean"], s["accuracy"]["std"]
                acc_text = f"{acc:.4f} ± {spread:.4f} ({len(s['folds'])}-fold)"
            else:
                run = train(cfg)
                m = json.loads((run / "metrics.json").read_text())
                acc, spread = m["accuracy"], 0.0
                acc_text = f"{acc:.4f} (test)"
            wall = time.time() - t
            print(f"| {ds} | {name} | {cost['params'] / 1e6:.2f} M | {cost['macs_per_second'] / 1e6:.1f} | "
                  f"{acc_text} | {wall:.0f} s |", flush=True)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps({"dataset": ds, "model": name, **cost, "accuracy": acc, "std": spread,
                                        "wall_seconds": round(wall, 1), "overrides": a.overrides}) + "\n")


if __name__ == "__main__":
    main()
