"""Inference real-time factor of every registered model (the model alone, front-end included).

    python benchmarks/model_rtf.py [--seconds 60] [--models cnn_small,crnn] [--threads 2] [--device cuda]

For each model (random weights, 10 classes): one recording of ``--seconds`` of noise at the
model's rate is cut into the windows ``earshot predict`` would use (the model's fixed input, else
1 s windows every 0.5 s, the defaults), batched as the predictor batches them (at most 2^19
samples a batch), and run in float32 and with bf16 autocast, each with the weights as they are
(NCHW) and in ``channels_last`` (NHWC, oneDNN's native layout). RTF = compute seconds / audio
seconds (median of 3 after a warm-up); lower is faster, 0.01 is 100x real time. With
``--device cuda`` each batch is copied from pinned host memory (``non_blocking``) inside the timed
region, as the predictor does, and the timing ends with a synchronisation.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from earshot.audio.io import fix_length
from earshot.data.windows import window_starts
from earshot.models import create_model, list_models

MAX_BATCH_SAMPLES = 2**19


def batches(x: np.ndarray, win: int, hop: int) -> list[torch.Tensor]:
    starts = window_starts(len(x), win, hop)
    per = max(1, MAX_BATCH_SAMPLES // win)
    wins = np.stack([fix_length(x, win, s) for s in starts]).astype(np.float32)
    return [torch.from_numpy(wins[i : i + per]) for i in range(0, len(wins), per)]


def timed(model: torch.nn.Module, bs: list[torch.Tensor], bf16: bool, repeats: int = 3) -> float:
    device = next(model.parameters()).device
    if device.type == "cuda":
        bs = [b.pin_memory() for b in bs]

    def run() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for b in bs:
                model(b.to(device, non_blocking=True))
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--models", help="comma-separated (default: every registered model)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()
    device = torch.device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    names = a.models.split(",") if a.models else list_models()
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"machine: {platform.processor() or platform.machine()}{gpu}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {a.seconds:g} s of audio per model")
    print(f"{'model':22s} {'rate':>6s} {'window':>8s} {'windows':>8s} {'RTF fp32':>9s} {'RTF bf16':>9s} {'speed-up':>8s} "
          f"{'fp32 NHWC':>9s} {'vs fp32':>7s} {'bf16 NHWC':>9s} {'vs bf16':>7s}")
    rng = np.random.default_rng(0)
    for name in names:
        torch.manual_seed(0)
        model = create_model(name, 10).eval().to(device)
        sr = model.sample_rate
        win = model.input_samples or max(model.input.min_samples, sr)
        hop = win if model.input_samples else win // 2
        x = (0.1 * rng.standard_normal(int(a.seconds * sr))).astype(np.float32)
        bs = batches(x, win, hop)
        t32, t16 = timed(model, bs, False), timed(model, bs, True)
        model.to(memory_format=torch.channels_last)  # 4-D weights only; 1-D conv and GRU models are unchanged
        t32_cl, t16_cl = timed(model, bs, False), timed(model, bs, True)
        print(f"{name:22s} {sr:6d} {win / sr:7.2f}s {sum(len(b) for b in bs):8d} {t32 / a.seconds:9.5f} "
              f"{t16 / a.seconds:9.5f} {t32 / t16:7.2f}x {t32_cl / a.seconds:9.5f} {t32 / t32_cl:6.2f}x "
              f"{t16_cl / a.seconds:9.5f} {t16 / t16_cl:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
