"""Few-shot protocols: the default recipes against the classical baseline (issue 8).

    python benchmarks/few_shot.py [--out /tmp/earshot-fewshot] [--protocols dcase4,dcase8,fsdd2,fsdd5]

Each protocol is split by recording, with a fixed seed:

- ``dcase4`` / ``dcase8``: DCASE 2016 Task 2 isolated office events (11 classes x 20 recordings,
  one file per recording): 4 or 8 training recordings per class, tested on the other 16 or 12.
  Model: ``recipes/dcase2016_events.yaml`` unchanged (its 5-fold protocol trains on 16 per class).
- ``fsdd2`` / ``fsdd5``: Free Spoken Digits, 2 or 5 takes per digit and speaker for training,
  drawn from takes 5-49; tested on the official test split (takes 0-4, 300 clips).
  Model: ``recipes/fsdd.yaml`` unchanged except that, with no validation split, it keeps its last
  epoch.

The baseline (``earshot baseline``: per-band log-mel statistics + logistic regression) trains on
the same clips. Target: the recipe beats the baseline on every protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from earshot.config import load_config
from earshot.data.manifest import SkipReport, read_manifest, write_manifest
from earshot.tasks import create_task
from earshot.training.baseline import run_baseline
from earshot.training.run import ensure_manifest, train

REPO = Path(__file__).resolve().parents[1]


def dcase(k: int, work: Path) -> tuple[Path, str]:
    cfg = load_config(REPO / "recipes/dcase2016_events.yaml")
    clips = read_manifest(ensure_manifest(cfg))
    rng = np.random.default_rng(k)
    by_class = defaultdict(list)
    for c in clips:
        by_class[c.labels[0]].append(c)
    out = []
    for cls in sorted(by_class):
        cs = sorted(by_class[cls], key=lambda c: c.id)
        train_ids = {c.id for c in rng.permutation(np.array(cs, dtype=object))[:k]}
        out += [replace(c, split="train" if c.id in train_ids else "test", fold=None) for c in cs]
    return write_manifest(work / f"dcase{k}.jsonl", out), "recipes/dcase2016_events.yaml"


def fsdd(k: int, work: Path) -> tuple[Path, str]:
    cfg = load_config(REPO / "recipes/fsdd.yaml")
    clips = read_manifest(ensure_manifest(cfg))
    rng = np.random.default_rng(k)
    groups = defaultdict(list)
    out = []
    for c in clips:
        digit, speaker, take = re.match(r"(\d)_([a-z]+)_(\d+)", c.id).groups()
        if int(take) < 5:
            out.append(replace(c, split="test"))
        else:
            groups[(digit, speaker)].append(c)
    for key in sorted(groups):
        cs = sorted(groups[key], key=lambda c: c.id)
        out += [replace(c, split="train") for c in rng.permutation(np.array(cs, dtype=object))[:k]]
    return write_manifest(work / f"fsdd{k}.jsonl", out), "recipes/fsdd.yaml"


PROTOCOLS = {"dcase4": lambda w: dcase(4, w), "dcase8": lambda w: dcase(8, w),
             "fsdd2": lambda w: fsdd(2, w), "fsdd5": lambda w: fsdd(5, w)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/earshot-fewshot")
    ap.add_argument("--protocols", default="dcase4,dcase8,fsdd2,fsdd5")
    ap.add_argument("overrides", nargs="*", help="key=value overrides for the recipes")
    a = ap.parse_args()
    os.chdir(REPO)
    work = Path(a.out)
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print("| protocol | train clips | test clips | baseline accuracy (wall) | default recipe accuracy (wall) | winner |")
    print("|---|---|---|---|---|---|")
    for name in a.protocols.split(","):
        manifest, recipe = PROTOCOLS[name](work)
        clips = read_manifest(manifest)
        train_clips = [c for c in clips if c.split == "train"]
        test_clips = [c for c in clips if c.split == "test"]
        task = create_task("classification", sorted({c.labels[0] for c in train_clips}))
        base = run_baseline(task, train_clips, test_clips, SkipReport())
        t = time.time()
        run = train(load_config(REPO / recipe, [f"data.manifest={manifest}", "data.prepare={}", "data.val_fraction=0",
                                                f"out_dir={work / 'runs'}", "trainer.progress_bar=false",
                                                "trainer.baseline=never", *a.overrides]))
        wall = time.time() - t
        acc = json.loads((run / "metrics.json").read_text())["accuracy"]
        win = "recipe" if acc > base["accuracy"] else "baseline" if acc < base["accuracy"] else "tie"
        print(f"| {name} | {len(train_clips)} | {len(test_clips)} | {base['accuracy']:.4f} ({base['wall_seconds']:.0f} s) "
              f"| {acc:.4f} ({wall:.0f} s) | {win} |", flush=True)


if __name__ == "__main__":
    main()
