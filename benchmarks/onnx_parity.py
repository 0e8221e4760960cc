"""ONNX export of every registered model: onnxruntime against PyTorch on real clips.

    python benchmarks/onnx_parity.py [--models cnn_small,crnn] [--tol 1e-4]

For each model in the registry (random weights: parity does not depend on them), build a
classifier over 10 classes (and a detector for the frame models, crnn and cnn9), export it with
``earshot export``'s code, and run a batch of real recordings from ../shared/data (spoken digits
and office events, resampled to the model's rate) through both runtimes: at the model's window and,
where the input length is free, at 1.5 times it. Prints a table of max |diff| of the probabilities
(and frame probabilities) and the exporter used, or the reason a model could not be exported.
Exit status 1 when a model misses the tolerance or fails to export.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from earshot.audio.io import fix_length, load_audio
from earshot.errors import EarshotError
from earshot.inference.export import export_model, max_difference
from earshot.models import create_model, list_models
from earshot.tasks import create_task

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DETECTORS = ("crnn", "cnn9")


def real_clips(sr: int, n: int) -> np.ndarray:
    """Four recordings (two digits, two office events) at ``sr``, cut or padded to ``n`` samples."""
    digits = sorted((DATA / "free-spoken-digit" / "recordings").glob("*.wav"))
    events = sorted((DATA / "dcase2016-task2" / "train" / "sound").glob("*.wav"))
    out = []
    for f in (digits[0], digits[1500], events[0], events[150]):
        x, _ = load_audio(f, sr)
        reps = int(np.ceil(n / len(x)))
        out.append(fix_length(np.tile(x, reps), n))  # loop short clips: real sound across the whole window
    return np.stack(out).astype(np.float32)


def check(name: str, task_name: str, tol: float, tmp: Path) -> dict:
    import onnx

    torch.manual_seed(0)
    model = create_model(name, 10).eval()
    task = create_task(task_name, [f"class{i}" for i in range(10)])
    sr = model.sample_rate
    n = model.input_samples or max(model.input.min_samples, int(2.0 * sr))
    row = {"model": name, "task": task_name, "sr": sr}
    t0 = time.perf_counter()
    out = tmp / f"{name}-{task_name}.onnx"
    try:
        export_model(model, task, {"clip_seconds": n / sr, "hop_seconds": n / sr / 2, "pooling": "mean"}, out)
    except EarshotError as e:
        return {**row, "error": str(e)}
    row["export_s"] = time.perf_counter() - t0
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    row["exporter"] = meta.get("exporter", "?")
    lengths = [n] if model.input_samples else [n, int(n * 1.5)]
    diffs = [max_difference(out, model, task, real_clips(sr, length)) for length in lengths]
    row["max_diff"] = max(diffs)
    row["ok"] = row["max_diff"] <= tol
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="comma-separated (default: every registered model)")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    if not DATA.exists():
        print(f"needs the real clips in {DATA}", file=sys.stderr)
        return 2
    names = a.models.split(",") if a.models else list_models()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}")
    print("| model | task | sample rate | exporter | export s | max abs diff | within tol |")
    print("|---|---|---|---|---|---|---|")
    start = time.perf_counter()
    failed = []
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            for task_name in ("classification", "detection") if name in DETECTORS else ("classification",):
                r = check(name, task_name, a.tol, Path(d))
                if "error" in r:
                    failed.append(r)
                    print(f"| {name} | {task_name} | {r['sr']} | - | - | - | cannot export |", flush=True)
                    continue
                if not r["ok"]:
                    failed.append(r)
                print(f"| {name} | {task_name} | {r['sr']} | {r['exporter']} | {r['export_s']:.1f} | "
                      f"{r['max_diff']:.2e} | {'yes' if r['ok'] else 'NO'} |", flush=True)
    print(f"\n{len(failed)} of the models failed; wall {time.perf_counter() - start:.0f} s")
    for r in failed:
        print(f"- {r['model']} ({r['task']}): {r.get('error') or 'max diff %.2e over %g' % (r['max_diff'], a.tol)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
