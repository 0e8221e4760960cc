"""Decoding and resampling throughput per core, by file format: the figure a large dataset's cache
build is made of.

    python benchmarks/decode_rate.py [--clips 40] [--seconds 10]

Writes ``--clips`` clips of ``--seconds`` at 44.1 kHz stereo (cut from the real background
recordings in ../shared/data/backgrounds when present, else noise with tones) as WAV (16-bit),
FLAC, Ogg Vorbis and MP3, then times ``earshot.audio.io.load_audio`` (decode, mix to mono,
resample with soxr) to 16 kHz and to 32 kHz on one thread. Prints clips per second and seconds of
audio per second of one core.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from earshot.audio.io import load_audio

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "backgrounds"
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"), "mp3": ("MP3", "MPEG_LAYER_III")}


def source_audio(seconds: float, sr: int = 44100) -> np.ndarray:
    """At least ``seconds`` of stereo audio at ``sr``: the real backgrounds, looped, or noise."""
    from earshot.audio.io import load_audio as load

    parts = [load(f, sr)[0] for f in sorted(DATA.glob("*.wav"))] if DATA.exists() else []
    if parts:
        x = np.concatenate(parts)
    else:
        rng = np.random.default_rng(0)
        t = np.arange(int(seconds * sr)) / sr
        x = 0.05 * rng.standard_normal(len(t)) + 0.2 * np.sin(2 * np.pi * 440 * t)
    x = np.tile(x, int(np.ceil(seconds * sr / len(x))) + 1)
    return np.stack([x, np.roll(x, 1000)], axis=1).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sr = 44100
    n = int(a.seconds * sr)
    src = source_audio(a.clips * a.seconds / 4 + a.seconds, sr)
    print(f"machine: {platform.processor() or platform.machine()}; {a.clips} clips of {a.seconds:g} s, 44.1 kHz "
          f"stereo, source: {'real backgrounds' if DATA.exists() else 'noise and a tone'}; one thread")
    print(f"{'format':6s} {'MB/clip':>8s} {'to 16 kHz clips/s':>18s} {'audio s/s':>10s} {'to 32 kHz clips/s':>18s} "
          f"{'audio s/s':>10s}")
    with tempfile.TemporaryDirectory() as tmp:
        for ext, (fmt, subtype) in FORMATS.items():
            files = []
            try:
                for i in range(a.clips):
                    off = (i * n // 4) % (len(src) - n)
                    f = Path(tmp) / f"c{i:03d}.{ext}"
                    sf.write(f, src[off : off + n], sr, format=fmt, subtype=subtype)
                    files.append(f)
            except (sf.LibsndfileError, ValueError, TypeError) as e:
                print(f"{ext:6s} cannot be written here ({e})")
                continue
            size = sum(f.stat().st_size for f in files) / len(files) / 2**20
            row = [f"{ext:6s} {size:8.2f}"]
            for rate in (16000, 32000):
                load_audio(files[0], rate)
                t = time.perf_counter()
                for f in files:
                    load_audio(f, rate)
                dt = time.perf_counter() - t
                row.append(f"{len(files) / dt:18.1f} {len(files) * a.seconds / dt:10.0f}")
            print(" ".join(row), flush=True)
            for f in files:
                f.unlink()


if __name__ == "__main__":
    main()
