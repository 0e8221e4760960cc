"""`earshot predict` on a recording an hour long: peak memory and real-time factor, end to end.

    python benchmarks/long_file.py CHECKPOINT [--minutes 60] [--rate 44100] [--backends torch,onnx]
                                   [--device cuda]

Builds a ``--minutes`` long 16-bit WAV at ``--rate`` from the real recordings in ../shared/data
(a street recording with office events laid over it, repeated with random offsets), then runs the
CLI in a fresh process per case, as a user would:

- ``earshot predict CKPT long.wav`` (one row for the file: windows pooled),
- ``earshot predict CKPT long.wav --window W --hop W --format csv`` (a row per window),
- the same with ``--backend onnx`` on the exported model.

Each process's peak resident memory comes from ``wait4``'s rusage; the real-time factor is the
process's wall time (decoding, resampling, front-end, model, writing; import and model load
included) over the recording's duration.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from earshot.audio.io import load_audio

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def build_recording(path: Path, minutes: float, rate: int, seed: int = 0) -> float:
    """Write the long WAV block by block (never all in memory); returns its duration."""
    rng = np.random.default_rng(seed)
    street, _ = load_audio(DATA / "backgrounds" / "street-scene-1.wav", rate)
    events = [load_audio(f, rate)[0] for f in sorted((DATA / "dcase2016-task2" / "train" / "sound").glob("*.wav"))[::7]]
    total = int(minutes * 60 * rate)
    with sf.SoundFile(str(path), "w", rate, 1, "PCM_16") as f:
        written = 0
        while written < total:
            block = np.roll(street, int(rng.integers(len(street)))) * rng.uniform(0.3, 1.0)
            for _ in range(6):
                e = events[rng.integers(len(events))]
                at = int(rng.integers(0, len(block) - len(e)))
                block[at : at + len(e)] += e * rng.uniform(0.2, 1.0)
            block = np.clip(block[: total - written], -1, 1)
            f.write(block)
            written += len(block)
    return total / rate


def run(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and the exit status of ``cmd``."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode() if p.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code:
        print(err[-2000:], file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=44100)
    ap.add_argument("--window", type=float, default=10.0, help="window of the per-window case, seconds")
    ap.add_argument("--backends", default="torch,onnx")
    ap.add_argument("--device", help="the PyTorch backend's device (earshot predict's default: cuda when available)")
    a = ap.parse_args()
    import torch

    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus{gpu}; checkpoint {a.checkpoint}")
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "long.wav"
        t0 = time.perf_counter()
        seconds = build_recording(wav, a.minutes, a.rate)
        print(f"recording: {seconds / 60:.0f} min at {a.rate} Hz, {wav.stat().st_size / 1e6:.0f} MB "
              f"(built in {time.perf_counter() - t0:.0f} s)")
        model = a.checkpoint
        if "onnx" in a.backends:
            model_onnx = str(Path(d) / "model.onnx")
            subprocess.run([sys.executable, "-m", "earshot.cli", "export", a.checkpoint, "-o", model_onnx],
                           check=True, capture_output=True)
        print("| backend | output | wall s | real-time factor | peak RSS MB |")
        print("|---|---|---|---|---|")
        for backend in a.backends.split(","):
            m = model if backend == "torch" else model_onnx
            for label, extra in (("one row per file", []),
                                 (f"per {a.window:g} s window (CSV)", ["--window", str(a.window), "--format", "csv",
                                                                        "-o", str(Path(d) / "w.csv")])):
                dev = ["--device", a.device] if a.device and backend == "torch" else []
                wall, rss, code = run([sys.executable, "-m", "earshot.cli", "predict", m, str(wav), "--backend",
                                       backend, *dev, *extra])
                status = "" if code == 0 else f" (exit {code})"
                print(f"| {backend} | {label} | {wall:.1f} | {wall / seconds:.5f} | {rss:.0f}{status} |", flush=True)


if __name__ == "__main__":
    main()
