"""Training throughput: clips per second of a full step, the machine's matmul FLOP/s, and the
fraction of it a training step achieves; and whether data loading keeps up.

    python benchmarks/train_throughput.py [--models resnet_small,cnn_small,crnn] [--batch 16]
                                          [--seconds 5] [--steps 5] [--compile] [--device cuda]
                                          [--model-args rnn_hidden=128,rnn_fused=false]

- Peak: FLOP/s of a 2048 x 2048 matmul in float32 and in bf16, measured in the same run (8192 x 8192
  on a GPU, where float32 means the default full-precision float32, not TF32).
- Per model and mode (fp32; bf16 autocast with the front-end in float32; channels_last; both; with
  ``--compile`` also torch.compile): clips/s of forward + backward + AdamW on random 5 s clips at the
  model's rate, after a warm-up step. FLOPs of one step come from
  ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions), so the achieved fraction
  is FLOPs x steps/s over the matching peak. On a GPU (``--device cuda``) the clips are on the
  device already and every timing ends with a synchronisation.
- Loading: the FSDD recipe's real training loader (decode, crop, augment, collate) iterated with no
  model over a first and a second epoch, in clips/s, against the clips/s of that recipe's model in
  training, in the precision and layout it trains with here (needs ../shared/data).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from earshot.models import create_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_flops(dtype: torch.dtype, device: torch.device, reps: int = 10) -> float:
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


def step_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, bf16: bool):
    def step() -> None:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
            loss = torch.nn.functional.cross_entropy(out["clip_logits"].float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def measure(name: str, mode: str, batch: int, seconds: float, steps: int,
            device: torch.device, model_args: dict | None = None) -> tuple[float, float]:
    """(clips/s, FLOPs of one step)."""
    torch.manual_seed(0)
    model = create_model(name, 10, **(model_args or {})).train().to(device)
    if mode in ("channels_last", "bf16+channels_last"):
        model = model.to(memory_format=torch.channels_last)
    sr = model.sample_rate
    x = torch.randn(batch, int(seconds * sr), device=device) * 0.1
    y = torch.randint(0, 10, (batch,), device=device)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    run_model = torch.compile(model) if mode == "compile" else model
    step = step_fn(run_model, x, y, opt, bf16=mode.startswith("bf16"))
    with FlopCounterMode(display=False) as fc:
        step_fn(model, x, y, opt, bf16=False)()
    flops = fc.get_total_flops()
    step()  # warm-up (and compilation)
    step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return batch * steps / (time.perf_counter() - t), flops


def loader_check(steps: int, device: torch.device, workers: int | None) -> None:
    """The FSDD recipe's training loader alone, over a first epoch (workers start, clips are decoded)
    and a second (each worker holds the decoded clips in memory), against that recipe's training step
    in the precision and layout it trains with on this device."""
    from earshot.config import load_config
    from earshot.data.manifest import SkipReport
    from earshot.training.run import build_data, training_precision

    try:
        over = [f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}"]
        over += [f"data.num_workers={workers}"] if workers is not None else []
        cfg, task, splits, model, w, loaders = build_data(load_config("recipes/fsdd.yaml", over), SkipReport())
    except Exception as e:  # noqa: BLE001 (the real data may be absent)
        print(f"loading check skipped: {e}")
        return
    loader = loaders.train

    def epoch_rate() -> float:
        t, n = time.perf_counter(), 0
        for b in loader:
            n += len(b["audio"])
        return n / (time.perf_counter() - t)

    cold, warm = epoch_rate(), epoch_rate()
    bf16 = training_precision(cfg.trainer.precision, cfg.trainer.accelerator) == "bf16-mixed"
    model.train().to(device)
    if cfg.trainer.channels_last:
        model.fast_layout()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    b = next(iter(loader))
    step = step_fn(model, b["audio"].to(device), b["target"].long().reshape(-1).to(device), opt, bf16=bf16)
    step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    model_rate = len(b["audio"]) * steps / (time.perf_counter() - t)
    print(f"loading (FSDD recipe, {cfg.data.num_workers} workers, batch {cfg.data.batch_size}, "
          f"{cfg.data.clip_seconds:g} s crops at {model.sample_rate} Hz): loader alone {cold:.0f} clips/s in a first "
          f"epoch, {warm:.0f} in a second; the recipe's {cfg.model.name} training step "
          f"({'bf16' if bf16 else 'fp32'}{', channels_last' if cfg.trainer.channels_last else ''}) {model_rate:.0f} "
          f"clips/s: {cold / model_rate:.1f}x and {warm / model_rate:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet_small,cnn_small,crnn")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--workers", type=int, help="loader workers of the loading check (default: the recipe's)")
    ap.add_argument("--model-args", default="", help="backbone arguments for every model, e.g. rnn_fused=false")
    a = ap.parse_args()
    model_args = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in a.model_args.split(",") if kv)}
    device = torch.device(a.device)
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}{gpu}")
    if device.type == "cuda":  # PyTorch's defaults: cuDNN convolutions may use TF32, plain matmuls may not
        print(f"TF32: convolutions {torch.backends.cudnn.allow_tf32}, matmuls {torch.backends.cuda.matmul.allow_tf32}")
    # a CPU without native bf16 (AVX2 only) emulates it, one thread, minutes per matmul: not a mode to offer
    native_bf16 = device.type == "cuda" or bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    peak = {"fp32": peak_flops(torch.float32, device),
            "bf16": peak_flops(torch.bfloat16, device) if native_bf16 else float("nan")}
    if not native_bf16:
        print(f"this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native bf16: bf16 modes skipped, and "
              "training's precision=auto is float32 here")
    n = 8192 if device.type == "cuda" else 2048
    if device.type == "cuda":  # PyTorch's defaults: cuDNN convolutions may use TF32, plain matmuls may not
        print(f"TF32: convolutions {torch.backends.cudnn.allow_tf32}, matmuls {torch.backends.cuda.matmul.allow_tf32}")
    print(f"matmul {n}^2: fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s")
    modes = ["fp32", "bf16", "channels_last", "bf16+channels_last"] + (["compile"] if a.compile else [])
    modes = [m for m in modes if native_bf16 or not m.startswith("bf16")]
    if model_args:
        print(f"model arguments: {model_args}")
    print(f"| model | mode | clips/s ({a.seconds:g} s clips, batch {a.batch}) | vs fp32 | GFLOP per step | "
          "achieved GFLOP/s | of peak |")
    print("|---|---|---|---|---|---|---|")
    for name in [m for m in a.models.split(",") if m]:  # --models "" runs only the loading check
        base = None
        for mode in modes:
            try:
                rate, flops = measure(name, mode, a.batch, a.seconds, a.steps, device, model_args)
            except Exception as e:  # noqa: BLE001 (a mode this model or machine lacks)
                print(f"| {name} | {mode} | failed: {type(e).__name__}: {str(e).splitlines()[0][:120]} | | | | |")
                continue
            base = base or rate
            achieved = flops * rate / a.batch
            p = peak["bf16" if mode.startswith("bf16") else "fp32"]
            print(f"| {name} | {mode} | {rate:.1f} | {rate / base:.2f}x | {flops / 1e9:.1f} | {achieved / 1e9:.0f} | "
                  f"{achieved / p:.0%} |", flush=True)
    loader_check(a.steps, device, a.workers)


if __name__ == "__main__":
    main()
