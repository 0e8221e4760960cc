"""Augmentations. Each draws its random parameters from a generator it is given, then applies
them deterministically, so a seed reproduces a run.

Waveform augmentations (shift, gain, coloured noise, real backgrounds) act on one example ``(N,)``
with a numpy ``Generator``; feature and batch
augmentations (SpecAugment, mixup) act on a batch with a ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from earshot.data.synth import coloured_noise
from earshot.errors import DataError


@dataclass
class WaveParams:
    """Drawn parameters of one waveform augmentation pass."""

    shift: int = 0
    gain: float = 1.0
    noise_colour: str | None = None
    noise_snr_db: float = 0.0
    noise_seed: int = 0


class WaveformAugment:
    """Random time shift (wrap or zero-pad), gain and additive coloured noise."""

    def __init__(self, shift: str = "none", shift_seconds: float = 0.0, gain_db: float = 0.0,
                 noise_prob: float = 0.0, noise_snr_db: tuple[float, float] = (10.0, 30.0),
                 noise_colours: tuple[str, ...] = ("white", "pink", "brown"), sample_rate: int = 16000):
        if shift not in ("none", "wrap", "pad"):
            raise ValueError(f"shift must be none, wrap or pad, not {shift!r}")
        self.shift, self.max_shift = shift, int(shift_seconds * sample_rate)
        self.gain_db, self.noise_prob = gain_db, noise_prob
        self.noise_snr_db, self.noise_colours = noise_snr_db, tuple(noise_colours)

    @property
    def active(self) -> bool:
        return (self.shift != "none" and self.max_shift > 0) or self.gain_db > 0 or self.noise_prob > 0

    def draw(self, rng: np.random.Generator) -> WaveParams:
        p = WaveParams()
        if self.shift != "none" and self.max_shift > 0:
            p.shift = int(rng.integers(-self.max_shift, self.max_shift + 1))
        if self.gain_db > 0:
            p.gain = float(10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20))
        if self.noise_prob > 0 and rng.random() < self.noise_prob:
            p.noise_colour = str(rng.choice(self.noise_colours))
            p.noise_snr_db = float(rng.uniform(*self.noise_snr_db))
            p.noise_seed = int(rng.integers(2**31))
        return p

    def apply(self, x: np.ndarray, p: WaveParams) -> np.ndarray:
        """Apply drawn parameters to ``x`` ``(N,)``; the same parameters give the same output."""
        if p.shift:
            if self.shift == "wrap":
                x = np.roll(x, p.shift)
            else:
                y = np.zeros_like(x)
                if p.shift > 0:
                    y[p.shift:] = x[: len(x) - p.shift]
                else:
                    y[: p.shift] = x[-p.shift:]
                x = y
        if p.noise_colour is not None:
            rms = float(np.sqrt(np.mean(x**2)))
            if rms > 0:
                n = coloured_noise(len(x), np.random.default_rng(p.noise_seed), p.noise_colour)
                x = x + n * (rms / 10 ** (p.noise_snr_db / 20))
        return (x * p.gain).astype(np.float32) if p.gain != 1.0 else x.astype(np.float32, copy=False)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(x, self.draw(rng)) if self.active else x


class BackgroundMix:
    """Mix a random crop of a real background recording into each example, at a random SNR.

    ``folder`` holds the recordings (any format and rate; decoded at ``sample_rate`` on first use
    and kept, so keep the folder to a few minutes of audio). The SNR is the example's RMS over the
    background crop's RMS, drawn uniformly from ``snr_db``; a silent example is left alone.
    """

    def __init__(self, folder: str | Path, sample_rate: int, snr_db: tuple[float, float] = (0.0, 20.0),
                 prob: float = 1.0):
        from earshot.audio.io import AUDIO_EXTENSIONS

        self.files = sorted(f for f in Path(folder).rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS)
        if not self.files:
            raise DataError(folder, "augment.backgrounds: no audio files in this folder")
        self.sample_rate, self.snr_db, self.prob = sample_rate, tuple(snr_db), prob
        self._audio: list[np.ndarray] | None = None

    def _load(self) -> list[np.ndarray]:
        if self._audio is None:
            from earshot.audio.io import load_audio

            self._audio = [load_audio(f, self.sample_rate)[0] for f in self.files]
        return self._audio

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.prob < 1.0 and rng.random() >= self.prob:
            return x
        level = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        if level < 1e-6:
            return x
        bgs = self._load()
        bg = bgs[int(rng.integers(len(bgs)))]
        n = len(x)
        if len(bg) < n:
            bg = np.tile(bg, n // max(1, len(bg)) + 1)
        start = int(rng.integers(0, len(bg) - n + 1))
        crop = bg[start : start + n].astype(np.float32)
        bg_level = float(np.sqrt(np.mean(np.square(crop, dtype=np.float64))))
        if bg_level < 1e-9:
            return x
        snr = rng.uniform(*self.snr_db)
        return (x + crop * (level / bg_level / 10 ** (snr / 20))).astype(np.float32)


def chain(*augments: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None
          ) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """One waveform augmentation that applies ``augments`` in order (None entries are skipped)."""
    fns = [a for a in augments if a is not None]

    def apply(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for f in fns:
            x = f(x, rng)
        return x

    return apply


def spec_augment(feats: torch.Tensor, gen: torch.Generator, time_masks: int = 2, time_width: int = 10,
                 freq_masks: int = 2, freq_width: int = 8) -> torch.Tensor:
    """SpecAugment time and frequency masks on ``(B, T, F)`` (masked to the batch mean; a new tensor)."""
    b, t, f = feats.shape
    out = feats.clone()
    fill = feats.mean()
    dev = feats.device
    for count, width, size, axis in ((time_masks, time_width, t, 1), (freq_masks, freq_width, f, 2)):
        if count <= 0 or width <= 0:
            continue
        w = torch.randint(0, width + 1, (b, count), generator=gen)
        start = (torch.rand(b, count, generator=gen) * (size - w).clamp(min=1)).long()
        pos = torch.arange(size)
        mask = ((pos[None, None] >= start[..., None]) & (pos[None, None] < (start + w)[..., None])).any(1)  # (B, size)
        mask = mask.to(dev)
        out = out.masked_fill(mask[:, :, None] if axis == 1 else mask[:, None, :], fill)
    return out


def filter_augment(feats: torch.Tensor, gen: torch.Generator, db_range: tuple[float, float] = (-6.0, 6.0),
                   n_bands: tuple[int, int] = (3, 6), min_bins: int = 6,
                   db_per_unit: torch.Tensor | None = None) -> torch.Tensor:
    """FilterAugment (Nam et al., ICASSP 2022), linear type, on ``(B, T, F)`` log-mel features.

    Each example gets its own random filter: the mel axis is cut into 3-6 bands of at least
    ``min_bins`` bins, a gain in ``db_range`` is drawn at every band edge, and the gain of each bin
    is interpolated between the edges. It imitates the colouring of another microphone and room.
    ``db_per_unit`` (shape ``(F,)``) is what one dB is in the features' units: ``1 / std`` for
    per-band standardised features; left out, the features are taken to be in dB.
    """
    b, _, f = feats.shape
    lo_n, hi_n = n_bands
    hi_n = max(1, min(hi_n, f // max(min_bins, 1)))
    lo_n = max(1, min(lo_n, hi_n))
    gains = torch.empty(b, f)
    pos = torch.arange(f, dtype=torch.float32)
    for i in range(b):
        n = int(torch.randint(lo_n, hi_n + 1, (1,), generator=gen))
        share = torch.rand(n, generator=gen) + 1e-3
        widths = min_bins + (f - 1 - n * min_bins) * share / share.sum()  # each band >= min_bins
        edges = torch.cat([torch.zeros(1), torch.cumsum(widths, 0)])  # n + 1 edges from 0 to f - 1
        edge_db = db_range[0] + (db_range[1] - db_range[0]) * torch.rand(n + 1, generator=gen)
        k = torch.bucketize(pos, edges[1:-1])  # the band of every bin
        t = ((pos - edges[k]) / (edges[k + 1] - edges[k])).clamp(0, 1)
        gains[i] = edge_db[k] + t * (edge_db[k + 1] - edge_db[k])
    if db_per_unit is not None:
        gains = gains * db_per_unit.detach().float().cpu()
    return feats + gains.to(feats.device, feats.dtype)[:, None, :]


def mixup_draw(batch_size: int, alpha: float, gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """A permutation of the batch and a mixing weight ``lam ~ Beta(alpha, alpha)`` (kept >= 0.5)."""
    perm = torch.randperm(batch_size, generator=gen)
    g = torch.distributions.Gamma(torch.tensor([alpha, alpha]), torch.tensor([1.0, 1.0]))
    state = torch.random.get_rng_state()
    torch.manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
    a, b = g.sample().tolist()
    torch.random.set_rng_state(state)
    lam = a / (a + b)
    return perm, max(lam, 1 - lam)


def mixup_apply(x: torch.Tensor, perm: torch.Tensor, lam: float) -> torch.Tensor:
    """``lam * x + (1 - lam) * x[perm]`` over the batch axis."""
    return lam * x + (1 - lam) * x[perm.to(x.device)]


