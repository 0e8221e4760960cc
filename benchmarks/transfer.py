"""Transfer with a frozen backbone against training from scratch, and calibration (issue 8).

    python benchmarks/transfer.py [--out /tmp/earshot-transfer] [--skip-scratch]

1. Train the FSDD recipe (recipes/fsdd.yaml: spoken digits, log-mel CNN) and keep it as a frozen
   backbone: no office sound is ever seen by it.
2. `earshot embed` the 220 DCASE 2016 office events (../shared/data/dcase2016-task2/train/sound)
   with it, then 5-fold cross-validation of heads on the cache (`earshot train-head --folds`):
   seed 003's attention pooling, and a linear head.
3. The same 5 folds trained from scratch (`earshot cv recipes/dcase2016_events.yaml`).
4. Calibration: each head's temperature is fitted on its validation carve-out; the expected
   calibration error on the held-out test fold with and without it.

Accuracy and wall time of each path are printed as one table; wall times are from this run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from earshot.config import load_config
from earshot.inference.embed import embed_manifest
from earshot.training.cv import cross_validate
from earshot.training.heads import HeadConfig, train_head
from earshot.training.run import ensure_manifest, train

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/earshot-transfer")
    ap.add_argument("--skip-scratch", action="store_true", help="leave out the from-scratch cross-validation")
    a = ap.parse_args()
    os.chdir(REPO)
    out = Path(a.out)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    rows = []

    t = time.time()
    fsdd = train(load_config(REPO / "recipes/fsdd.yaml", [f"out_dir={out}", "trainer.progress_bar=false"]))
    fsdd_wall = time.time() - t
    fsdd_acc = json.loads((fsdd / "metrics.json").read_text())["accuracy"]
    print(f"FSDD backbone: accuracy {fsdd_acc:.4f} on spoken digits, {fsdd_wall:.0f} s", flush=True)

    events_cfg = load_config(REPO / "recipes/dcase2016_events.yaml", [f"out_dir={out}", "trainer.progress_bar=false"])
    manifest = ensure_manifest(events_cfg)
    t = time.time()
    emb = embed_manifest(str(fsdd / "checkpoints/best.ckpt"), manifest, out / "dcase2016_fsdd_emb.h5")
    embed_wall = time.time() - t
    print(f"embedded {emb['n_clips']} clips in {embed_wall:.1f} s ({emb['seconds_per_audio_hour']:.0f} s per "
          "hour of audio)", flush=True)

    for name, head in (("attention", {"type": "frame", "pool": "attention"}), ("linear", {"type": "clip", "pool": "mean"})):
        t = time.time()
        folds = [train_head(out / "dcase2016_fsdd_emb.h5", out / f"head-{name}/fold{k}",
                            HeadConfig(head=head, test_folds=[k])) for k in range(1, 6)]
        wall = time.time() - t
        acc = [f["accuracy"] for f in folds]
        ece = [f["ece"] for f in folds]
        ece_raw = [f.get("ece_uncalibrated", f["ece"]) for f in folds]
        temps = [f.get("calibration", {}).get("temperature", 1.0) for f in folds]
        rows.append((f"frozen FSDD backbone + {name} head (train-head)", np.mean(acc), np.std(acc), wall + embed_wall))
        print(f"  {name}: accuracy {np.mean(acc):.4f} ± {np.std(acc):.4f} (folds {', '.join(f'{x:.3f}' for x in acc)});"
              f" test ECE {np.mean(ece_raw):.4f} without temperature -> {np.mean(ece):.4f} with "
              f"(temperatures {', '.join(f'{x:.2f}' for x in temps)}); {wall:.1f} s", flush=True)

    if not a.skip_scratch:
        t = time.time()
        s = cross_validate(events_cfg, [1, 2, 3, 4, 5])
        wall = time.time() - t
        rows.append(("from scratch (recipes/dcase2016_events.yaml)", s["accuracy"]["mean"], s["accuracy"]["std"], wall))

    print("\n| DCASE 2016 office events, 5-fold CV | accuracy | wall |")
    print("|---|---|---|")
    for name, m, sd, wall in rows:
        print(f"| {name} | {m:.4f} ± {sd:.4f} | {wall:.0f} s |")
    print(f"(backbone training on FSDD, once: {fsdd_wall:.0f} s)")


if __name__ == "__main__":
    main()
