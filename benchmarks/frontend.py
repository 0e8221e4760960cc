"""Log-mel front-end vs librosa: agreement in dB and throughput on a batch of 64 five-second clips.

    python benchmarks/frontend.py [--rounds 3] [--threads N] [--breakdown] [--device cuda]
    EARSHOT_NATIVE=0 python benchmarks/frontend.py      # the torch ops alone, without the C kernels

Prints, for each front-end setting, the maximum absolute difference in dB against
``librosa.feature.melspectrogram`` + ``power_to_db`` (same settings, float32) and clips per
second for earshot and librosa, with their ratio. Targets (issue 10): <= 1e-3 dB, >= 8x with
2 threads. earshot's path is printed first: the native kernels of ``earshot.features.native``
around torch's FFT where they build, else torch ops throughout. The last line compares the two
paths on 200 real FSDD recordings from ../shared/data, where those are present.

``--breakdown`` also times each stage of earshot's front-end on one cache-sized chunk (the way
it runs), scaled to the whole batch, and the ratio librosa would have to earshot's FFT alone:
the ceiling of any float32 front-end built on the same FFT.

``--device cuda`` runs earshot's front-end on the GPU (librosa stays on the CPU): each call copies
the batch from pinned host memory and ends with a synchronisation, and a second line gives the GPU's
clips/s on a batch of ``--gpu-batch`` clips, where the GPU is full.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from earshot.features import native
from earshot.features.frontends import LogMel, LogMelConfig

SETTINGS = {
    "seed000 32k/2048/1024/64": LogMelConfig(sample_rate=32000, n_fft=2048, hop_length=1024, n_mels=64, fmin=50.0),
    "default 16k/512/160/64": LogMelConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64),
    "fsdd 8k/512(256)/80/64": LogMelConfig(sample_rate=8000, n_fft=512, win_length=256, hop_length=80, n_mels=64,
                                           fmin=20.0),
}


def librosa_logmel(x: np.ndarray, c: LogMelConfig) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=x, sr=c.sample_rate, n_fft=c.n_fft, win_length=c.win_length,
                                         hop_length=c.hop_length, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax)
    return librosa.power_to_db(mel, ref=1.0, amin=c.amin, top_db=None).transpose(0, 2, 1)  # (B, T, F)


def alternating_blocks(fn_a, fn_b, rounds: int, block: int = 5) -> tuple[float, float, float]:
    """Median seconds per call of ``fn_a`` and ``fn_b``, timed in alternating blocks, and the
    median over rounds of the ratio b/a.

    Blocks, not single calls: right after one library's BLAS threads finish they spin-wait for
    a while, and on a 2-core machine that steals the other side's cores. Each block starts with
    an untimed call; rounds alternate so that machine noise hits both sides alike.
    """
    ta, tb, ratios = [], [], []
    for r in range(rounds):
        med = []
        for fn, out in ((fn_a, ta), (fn_b, tb)):
            for _ in range(3 if r == 0 else 1):  # warm-up (FFT plans, allocator pools, idle threads)
                fn()
            times = []
            for _ in range(block):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            out.extend(times)
            med.append(statistics.median(times))
        ratios.append(med[1] / med[0])
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--breakdown", action="store_true", help="time each stage of earshot's front-end")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (earshot's front-end only)")
    ap.add_argument("--gpu-batch", type=int, default=2048)
    a = ap.parse_args()
    device = torch.device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    import librosa

    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, librosa {librosa.__version__}")
    lib = native.load()
    if device.type == "cuda":
        print(f"earshot path: torch ops on {torch.cuda.get_device_name(device)}, host-to-device copy included")
    else:
        print(f"earshot path: {'native kernels (' + str(lib._name) + ') around torch.fft.rfft' if lib else 'torch ops'}"
              f" on this CPU ({torch.backends.cpu.get_cpu_capability()}; EARSHOT_NATIVE=0 forces the torch ops, "
              "EARSHOT_NATIVE=1 the kernels)")
    print(f"batch: {a.batch} clips x {a.seconds:g} s, {a.rounds} rounds of alternating 5-call blocks; ratio = median per-round ratio")
    print(f"{'setting':28s} {'max |diff| dB':>13s} {'earshot clips/s':>16s} {'librosa clips/s':>16s} {'ratio':>6s}")
    rng = np.random.default_rng(0)
    for name, c in SETTINGS.items():
        x = (rng.standard_normal((a.batch, int(a.seconds * c.sample_rate))) * 0.1).astype(np.float32)
        fe = LogMel(c).eval()
        xt = torch.from_numpy(x)
        stages = stage_times(fe, xt) if a.breakdown and device.type == "cpu" else {}  # first: librosa's idle BLAS threads spin
        if device.type == "cuda":
            fe = on_device(fe, device)
            xt = xt.pin_memory()
        with torch.inference_mode():
            ours = fe(xt).cpu().numpy()
            ref = librosa_logmel(x, c)
            t_ours, t_ref, ratio = alternating_blocks(lambda: fe(xt), lambda: librosa_logmel(x, c), a.rounds)
        diff = float(np.abs(ours - ref).max())
        print(f"{name:28s} {diff:13.2e} {a.batch / t_ours:16.1f} {a.batch / t_ref:16.1f} {ratio:6.1f}")
        if stages:
            line = "  ".join(f"{k} {v * 1e3:.1f}" for k, v in stages.items())
            print(f"{'':28s} ms per batch: {line}; FFT-only ceiling {t_ref / stages['rfft']:.1f}x librosa")
        if device.type == "cuda":
            big = torch.from_numpy(np.resize(x, (a.gpu_batch, x.shape[1]))).pin_memory()
            with torch.inference_mode():
                t_big, _, _ = alternating_blocks(lambda: fe(big), lambda: None, 2)
            print(f"{'':28s} GPU, batch {a.gpu_batch}: {a.gpu_batch / t_big:.0f} clips/s "
                  f"({a.gpu_batch / t_big / (a.batch / t_ref):.0f}x librosa on the CPU)")
    if device.type == "cpu":
        real_clips_check()


def on_device(fe: LogMel, device: torch.device):
    """``fe`` on ``device``, called on a host batch: copied there asynchronously, synchronised after."""
    fe = fe.to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        out = fe(x.to(device, non_blocking=True))
        torch.cuda.synchronize(device)
        return out

    return run


def real_clips_check(n: int = 200) -> None:
    """The native kernels against the torch ops on real recordings: the first ``n`` FSDD clips
    (1 s crops, zero-padded: digital silence included), FSDD's front-end settings."""
    from pathlib import Path

    import soundfile as sf

    files = sorted((Path(__file__).resolve().parents[2] / "shared/data/free-spoken-digit").rglob("*.wav"))[:n]
    c = SETTINGS["fsdd 8k/512(256)/80/64"]
    fe = LogMel(c).eval()
    if not files or os.environ.get("EARSHOT_NATIVE") == "0" or native.load() is None:
        print("real clips: skipped (" + ("no ../shared/data/free-spoken-digit" if not files else "the torch ops run") + ")")
        return
    x = np.zeros((len(files), c.sample_rate), np.float32)
    for i, f in enumerate(files):
        y = sf.read(f, dtype="float32")[0][: c.sample_rate]
        x[i, : len(y)] = y
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        ours = fe(xt)
        os.environ["EARSHOT_NATIVE"] = "0"  # the torch ops
        native.load.cache_clear()
        ref = fe(xt)
        del os.environ["EARSHOT_NATIVE"]
        native.load.cache_clear()
    print(f"real clips: {len(files)} FSDD recordings, native kernels against torch ops: "
          f"max |diff| {float((ours - ref).abs().max()):.2e} dB")


def stage_times(fe: LogMel, x: torch.Tensor, repeats: int = 20) -> dict[str, float]:
    """Seconds per batch of each stage, timed on one chunk of the size the front-end uses: the
    native kernels' stages where they run, else the torch ops'."""
    c = fe.config
    n = max(1, fe.CHUNK_ELEMENTS // (c.frames(x.shape[-1]) * c.n_fft))
    xc, scale = x[:n], x.shape[0] / n
    half = c.n_fft // 2
    win = fe.window.shape[0]
    padded = torch.nn.functional.pad(xc[:, None], (half, half))[:, 0] if c.center else xc
    frames = padded.unfold(-1, c.n_fft if c.center else win, c.hop_length) * fe.window
    spec = torch.fft.rfft(frames, n=c.n_fft)
    lib = fe._native_kernels(xc)
    if lib is not None:
        grouped = native.GroupedMel(fe.mel_t, lib.mel_group_size())
        buf, mel_out = torch.empty_like(frames), torch.empty(*frames.shape[:2], c.n_mels)
        steps = {"frames+window (C)": lambda: native.window_frames(lib, xc, fe.window, buf, c.hop_length,
                                                                   half if c.center else 0, c.pad_mode == "reflect"),
                 "rfft": lambda: torch.fft.rfft(frames, n=c.n_fft),
                 "power+mel+log (C)": lambda: native.logmel_from_spectrum(lib, spec, grouped, mel_out, c.power == 1.0,
                                                                          c.log, c.amin, c.log_offset),
                 "all": lambda: fe(xc)}
    else:
        power = spec.real.square() + spec.imag.square()
        mel = power @ fe.mel_t
        steps = {"pad": lambda: torch.nn.functional.pad(xc[:, None], (half, half)),
                 "frames+window": lambda: padded.unfold(-1, frames.shape[-1], c.hop_length) * fe.window,
                 "rfft": lambda: torch.fft.rfft(frames, n=c.n_fft),
                 "power": lambda: torch.addcmul(spec.real.square(), spec.imag, spec.imag),
                 "mel matmul": lambda: power @ fe.mel_t,
                 "log": lambda: 10.0 * torch.log10(torch.clamp(mel, min=c.amin)),
                 "all": lambda: fe(xc)}
    out = {}
    with torch.inference_mode():
        for k, fn in steps.items():
            fn()
            t = time.perf_counter()
            for _ in range(repeats):
                fn()
            out[k] = (time.perf_counter() - t) / repeats * scale
    return out


if __name__ == "__main__":
    main()
