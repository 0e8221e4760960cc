"""The built-in procedural dataset behind ``earshot quickstart`` and the tests.

Six sound classes, each randomised in pitch, duration, level, background noise and
reverberation (RT60 0.05-0.5 s, direct-to-reverberant ratio 0-10 dB). Pitch ranges overlap on purpose: a model has to learn each class's shape
(a steady tone against an amplitude-modulated one, a single tone against a harmonic stack),
not its loudness or register.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve, lfilter

if TYPE_CHECKING:
    from earshot.data.manifest import Clip

CLASSES = ("tone", "chirp", "noise_burst", "clicks", "harmonic", "am_tone")


def _envelope(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    a = max(1, int(rng.uniform(0.005, 0.05) * sr))
    r = max(1, int(rng.uniform(0.02, 0.2) * sr))
    env = np.ones(n, np.float32)
    env[: min(a, n)] = np.linspace(0, 1, min(a, n))
    env[-min(r, n):] *= np.linspace(1, 0, min(r, n))
    return env


def coloured_noise(n: int, rng: np.random.Generator, colour: str = "white") -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise, unit RMS."""
    w = rng.standard_normal(n)
    if colour != "white":
        spec = np.fft.rfft(w)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= f ** (0.5 if colour == "pink" else 1.0)
        w = np.fft.irfft(spec, n)
    return (w / (np.sqrt(np.mean(w**2)) + 1e-12)).astype(np.float32)


def synth_event(cls: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A dry, unit-peak event of class ``cls`` lasting ``n`` samples."""
    t = np.arange(n) / sr
    lo, hi = 150.0, min(3000.0, sr / 2 * 0.8)
    if cls == "tone":
        x = np.sin(2 * np.pi * rng.uniform(lo, hi) * t + rng.uniform(0, 2 * np.pi))
    elif cls == "chirp":
        f0, f1 = rng.uniform(lo, hi, size=2)
        if abs(f1 - f0) < 300:
            f1 = min(hi, f0 + 400) if f0 < hi - 400 else f0 - 400
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1] + 1e-9))
        x = np.sin(phase)
    elif cls == "noise_burst":
        fc, bw = rng.uniform(300, hi), rng.uniform(0.3, 1.0)
        w = coloured_noise(n, rng)
        spec = np.fft.rfft(w)
        f = np.fft.rfftfreq(n, 1 / sr)
        spec *= np.exp(-0.5 * (np.log2(np.maximum(f, 1) / fc) / bw) ** 2)
        x = np.fft.irfft(spec, n)
    elif cls == "clicks":
        rate = rng.uniform(6, 30)
        x = np.zeros(n)
        pos = np.arange(rng.uniform(0, 1 / rate), t[-1], 1 / rate)
        idx = (pos * sr).astype(int)
        x[idx[idx < n]] = 1.0
        decay = np.exp(-np.arange(int(0.004 * sr)) / (0.0008 * sr))
        x = np.convolve(x, decay * np.sin(2 * np.pi * rng.uniform(1000, hi) * np.arange(len(decay)) / sr))[:n]
    elif cls == "harmonic":
        f0 = rng.uniform(lo, 600)
        k = rng.integers(3, 9)
        x = sum((rng.uniform(0.3, 1.0) / h) * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.28))
                for h in range(1, k + 1) if f0 * h < sr / 2 * 0.9)
    elif cls == "am_tone":
        fm, depth = rng.uniform(3, 14), rng.uniform(0.85, 1.0)
        x = (1 - depth / 2 + depth / 2 * np.sin(2 * np.pi * fm * t)) * np.sin(2 * np.pi * rng.uniform(lo, hi) * t)
    else:
        raise ValueError(f"unknown class {cls!r}; known: {CLASSES}")
    x = np.asarray(x, np.float64) * _envelope(n, sr, rng)
    return (x / (np.max(np.abs(x)) + 1e-12)).astype(np.float32)


def synth_clip(cls: str, sr: int = 16000, rng: np.random.Generator | None = None,
               duration: float | None = None) -> np.ndarray:
    """A full clip: an event at a random place, reverberated, over coloured noise, random level."""
    rng = rng if rng is not None else np.random.default_rng()
    dur = duration if duration is not None else rng.uniform(0.6, 2.0)
    n = int(dur * sr)
    ev_n = min(n, max(int(0.05 * sr), int(n * rng.uniform(0.4, 0.9))))
    start = int(rng.integers(0, n - ev_n + 1))
    x = np.zeros(n, np.float32)
    x[start : start + ev_n] = synth_event(cls, ev_n, sr, rng)
    rt60 = rng.uniform(0.05, 0.5)
    ir_n = int(rt60 * sr)
    ir = coloured_noise(ir_n, rng) * np.exp(-6.9 * np.arange(ir_n) / ir_n)  # the reverberant tail
    # direct-to-reverberant ratio 0-10 dB, as in ordinary rooms: a tail far louder than the direct sound
    # smooths an amplitude modulation away and makes an AM tone indistinguishable from a tone
    drr_db = rng.uniform(0.0, 10.0)
    ir *= np.sqrt(10 ** (-drr_db / 10) / (np.sum(ir[1:] ** 2) + 1e-12))
    ir[0] = 1.0  # direct path
    x = fftconvolve(x, ir)[:n].astype(np.float32)
    x /= np.max(np.abs(x)) + 1e-12
    snr_db = rng.uniform(0, 30)
    noise = coloured_noise(n, rng, rng.choice(["white", "pink", "brown"]))
    sig_rms = np.sqrt(np.mean(x**2)) + 1e-12
    x = x + noise * sig_rms / 10 ** (snr_db / 20)
    x = lfilter([1.0], [1.0, -rng.uniform(0, 0.5)], x)  # mild random tilt
    return (x / np.max(np.abs(x)) * 10 ** (rng.uniform(-30, -3) / 20)).astype(np.float32)


def make_synthetic_dataset(
    out: str | Path,
    n_per_class: int = 60,
    sample_rate: int = 16000,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    classes: tuple[str, ...] = CLASSES,
) -> Path:
    """Write ``out/{train,val,test}/<class>/*.wav`` and return ``out``. Same seed, same files."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    n_train = int(round(n_per_class * fractions[0]))
    n_val = int(round(n_per_class * fractions[1]))
    for cls in classes:
        for i in range(n_per_class):
            split = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            d = out / split / cls
            d.mkdir(parents=True, exist_ok=True)
            sf.write(d / f"{cls}_{i:04d}.wav", synth_clip(cls, sample_rate, rng), sample_rate, subtype="PCM_16")
    return out


def noise_clips(folder: str | Path, label: str, n: int, sample_rate: int = 16000, seconds: float = 5.0,
                seed: int = 0, split: str = "train") -> list["Clip"]:
    """``n`` clips of white, pink or brown noise at -40 to -10 dBFS RMS, labelled ``label``: seed 003's
    extra examples of its "Other" class. Written once to ``folder`` (the same seed, the same files)."""
    import soundfile as sf

    from earshot.data.manifest import Clip

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        colour = ("white", "pink", "brown")[i % 3]
        x = coloured_noise(int(seconds * sample_rate), rng, colour) * 10 ** (rng.uniform(-40, -10) / 20)
        path = folder / f"noise_{colour}_{i:04d}.wav"
        if not path.exists():
            sf.write(path, np.clip(x, -1, 1), sample_rate, subtype="PCM_16")
        clips.append(Clip(id=f"noise_{label}_{i:04d}", path=str(path.resolve()), duration=seconds,
                          sample_rate=sample_rate, channels=1, labels=[label], split=split,
                          extra={"generated": f"{colour} noise"}))
    return clips
