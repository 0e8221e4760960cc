"""Train a recipe on FSDD from scratch and print test accuracy and wall time.

    python benchmarks/fsdd.py [--recipe recipes/fsdd_samplecnn.yaml] [key=value ...]   # e.g. model.name=cnn_medium

Reads ../shared/data/free-spoken-digit (via recipes/fsdd.yaml by default). Targets: test accuracy
>= 0.98 in <= 10 minutes wall on 2 CPU cores (log-mel); >= 0.97 with SampleCNN on raw waveforms.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from earshot.config import load_config
from earshot.training.run import train

REPO = Path(__file__).resolve().parents[1]


def main(args: list[str]) -> None:
    recipe = "recipes/fsdd.yaml"
    if args[:1] == ["--recipe"]:
        recipe, args = args[1], args[2:]
    overrides = args
    os.chdir(REPO)  # the recipe's paths are relative to the repository root
    cfg = load_config(REPO / recipe, ["trainer.progress_bar=false", *overrides])
    t = time.time()
    run = train(cfg)
    wall = time.time() - t
    m = json.loads((run / "metrics.json").read_text())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print(f"recipe: {recipe}  model: {cfg.model.name}  epochs: {m['epochs']}  overrides: {overrides or '-'}")
    print(f"test clips: {m['n_clips']}  accuracy: {m['accuracy']:.4f}  map@3: {m['map@3']:.4f}  "
          f"skipped: {m['skipped']}")
    print(f"wall: {wall:.0f} s (prepare + train + evaluate)   run: {run}")


if __name__ == "__main__":
    main(sys.argv[1:])
