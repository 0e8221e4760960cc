"""Inference in bf16 against float32: the same checkpoints, the same clips, accuracy and time.

    python benchmarks/precision.py CHECKPOINT:MANIFEST:SELECT [...]

SELECT is ``split=test`` or ``fold=3``. For each checkpoint the task's headline metrics are computed
twice with :meth:`Predictor.evaluate`, the network in float32 and under bf16 autocast (the log-mel
front-end stays float32 in both), with the wall time of each evaluation. ``--cv NAME`` instead takes
every ``NAME-fold{k}-*`` run under ``--runs`` and scores fold k's clips, then averages.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from earshot.data.manifest import read_manifest
from earshot.inference.predictor import Predictor

KEYS = ("accuracy", "map@3", "mAP", "event_f1_macro", "segment_f1_micro", "psds1")


def score(ckpt: Path, clips: list, precision: str) -> tuple[dict[str, float], float]:
    pred = Predictor.load(ckpt, "cpu", precision=precision)
    t0 = time.perf_counter()
    r = pred.evaluate(clips)
    return {k: float(r[k]) for k in KEYS if isinstance(r.get(k), (int, float))}, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="*", help="CHECKPOINT:MANIFEST:split=NAME or fold=K")
    ap.add_argument("--cv", action="append", default=[], help="a cross-validation run name (NAME-fold{k}-*)")
    ap.add_argument("--runs", default="/tmp/earshot-bench")
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"native bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    print("| checkpoint | clips | fp32 | bf16 | fp32 s | bf16 s |")
    print("|---|---|---|---|---|---|")
    for case in a.cases:
        ckpt, manifest, select = case.split(":")
        key, value = select.split("=")
        clips = [c for c in read_manifest(manifest) if str(getattr(c, key)) == value]
        (f32, t32), (b16, tb) = (score(Path(ckpt), clips, p) for p in ("fp32", "bf16"))
        fmt = lambda d: ", ".join(f"{k} {v:.4f}" for k, v in d.items())  # noqa: E731
        print(f"| {ckpt} | {len(clips)} | {fmt(f32)} | {fmt(b16)} | {t32:.1f} | {tb:.1f} |", flush=True)
    for name in a.cv:
        res: dict[str, list[float]] = {"fp32": [], "bf16": []}
        times = {"fp32": 0.0, "bf16": 0.0}
        n = 0
        for run in sorted(Path(a.runs).glob(f"{name}-fold*-*")):
            k = int(run.name.split("-fold")[1].split("-")[0])
            cfg = yaml.safe_load((run / "config.yaml").read_text())
            clips = [c for c in read_manifest(cfg["data"]["manifest"]) if c.fold == k]
            n += len(clips)
            for p in res:
                s, t = score(run / "checkpoints" / "best.ckpt", clips, p)
                res[p].append(s["accuracy"])
                times[p] += t
        print(f"| {name}, {len(res['fp32'])} folds | {n} | accuracy {np.mean(res['fp32']):.4f} "
              f"({', '.join(f'{v:.4f}' for v in res['fp32'])}) | accuracy {np.mean(res['bf16']):.4f} "
              f"({', '.join(f'{v:.4f}' for v in res['bf16'])}) | {times['fp32']:.1f} | {times['bf16']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
