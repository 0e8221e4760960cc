"""Front-ends as ``nn.Module``s inside the model graph: log-mel and raw waveform.

A model's *input* is one of two modules: :class:`LogMelInput` (``LogMel`` then per-band
``Normalize``) or :class:`Waveform` (the samples as they are). Both take a waveform ``(B, N)``,
run on whatever device the model is on and export with it. ``LogMel`` matches
``librosa.feature.melspectrogram`` (Slaney mel scale and norm, periodic Hann window,
centred frames with zero padding) followed by ``librosa.power_to_db(ref=1.0, amin=1e-10)``.
On the CPU, run eagerly, its stages around the FFT are fused C kernels
(:mod:`earshot.features.native`) wherever those build, with the same values.

Pretrained networks were trained on their own front-ends, and ``LogMelConfig`` reproduces them:
PANNs (``torchlibrosa``: reflect padding, otherwise librosa's log-mel) and VGGish (frames not
centred, a 25 ms window in a 512-point FFT, magnitude, HTK mel triangles, ``log(mel + 0.01)``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Literal

import numpy as np
import torch
from torch import nn


@dataclass
class LogMelConfig:
    """Settings of the log-mel front-end; ``fmax=None`` means Nyquist."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int | None = None
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None
    amin: float = 1e-10
    top_db: float | None = None
    # Settings of pretrained front-ends (the defaults are librosa's):
    center: bool = True  # frames centred on t * hop (the signal padded by n_fft // 2 each side)
    pad_mode: Literal["constant", "reflect"] = "constant"  # centring pads zeros, or reflects (torchlibrosa)
    power: float = 2.0  # 2: power spectrum, 1: magnitude (VGGish)
    mel_scale: Literal["slaney", "htk"] = "slaney"  # htk: HTK mel, triangles in mel, no area norm (VGGish)
    log: Literal["db", "ln", "pcen"] = "db"  # db: 10 log10(max(mel, amin)); ln: log(mel + log_offset); pcen: below
    log_offset: float = 0.0
    # Per-channel energy normalisation (log="pcen", Wang et al. 2017; librosa.pcen's defaults), in place of the
    # log: each band divided by a smoothed copy of itself raised to alpha, then root-compressed,
    # ((gain E / (eps + M)^alpha + delta)^r - delta^r), M a first-order low-pass of gain E over time.
    pcen_time_constant: float = 0.4  # seconds
    pcen_alpha: float = 0.98
    pcen_delta: float = 2.0
    pcen_r: float = 0.5
    pcen_gain: float = 2.0**31  # the scale librosa suggests for audio in [-1, 1]

    def key(self) -> str:
        """A short hash of every setting: a feature cache made with other settings has another key.
        Settings left at their defaults that were added later stay out of the hash, so the caches of
        earlier versions keep their keys."""
        d = asdict(self)
        for f in fields(self):
            if f.name in _LATER_SETTINGS and d[f.name] == f.default:
                del d[f.name]
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def frames(self, n_samples: int) -> int:
        """Number of frames for ``n_samples`` of audio."""
        if not self.center:
            return 1 + max(0, n_samples - (self.win_length or self.n_fft)) // self.hop_length
        return 1 + n_samples // self.hop_length


_LATER_SETTINGS = ("center", "pad_mode", "power", "mel_scale", "log", "log_offset", "pcen_time_constant",
                   "pcen_alpha", "pcen_delta", "pcen_r", "pcen_gain")


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular mel filters, shape ``(n_mels, n_fft // 2 + 1)``."""
    fmax = sr / 2 if fmax is None else fmax
    fft_f = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return w.astype(np.float32)


def htk_mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 125.0, fmax: float | None = None) -> np.ndarray:
    """Triangles spaced on the HTK mel scale (``1127 ln(1 + f / 700)``) and drawn in mel, with
    peak 1 and no area normalisation, the DC bin left out: VGGish's (and ``tf.signal``'s)
    filterbank, shape ``(n_mels, n_fft // 2 + 1)``."""
    fmax = sr / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sr / 2:
        raise ValueError(f"mel band edges must satisfy 0 <= fmin < fmax <= {sr / 2}, got {fmin}, {fmax}")
    mel = lambda f: 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)  # noqa: E731
    bins = mel(np.linspace(0, sr / 2, 1 + n_fft // 2))
    edges = np.linspace(mel(fmin), mel(fmax), n_mels + 2)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    w = np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    w[:, 0] = 0.0
    return w.astype(np.float32)


def _pcen_kernel(frames: float) -> torch.Tensor:
    """The PCEN smoother's impulse response ``(1, 1, n)``, oldest tap first (conv1d correlates), for a
    time constant of ``frames``: librosa's coefficient ``s``, the taps ``s (1 - s)^k`` cut below 1e-4
    of the first and renormalised to sum to 1."""
    if frames <= 0:
        raise ValueError(f"the PCEN time constant must be positive, got {frames} frames")
    s = (np.sqrt(1 + 4 * frames**2) - 1) / (2 * frames**2)
    n = 1 if s >= 1 else max(1, int(np.ceil(np.log(1e-4) / np.log1p(-s))))
    k = s * (1 - s) ** np.arange(n)[::-1]
    return torch.tensor(k / k.sum(), dtype=torch.float32)[None, None]


class LogMel(nn.Module):
    """Waveform ``(B, N)`` -> log-mel in dB ``(B, T, F)`` (or its PCEN, with ``log="pcen"``)."""

    def __init__(self, config: LogMelConfig | None = None):
        super().__init__()
        self.config = c = config or LogMelConfig()
        win = c.win_length or c.n_fft
        window = torch.hann_window(win, periodic=True)
        if win < c.n_fft and c.center:  # centre a short window in the FFT frame, as librosa does
            pad = (c.n_fft - win) // 2
            window = nn.functional.pad(window, (pad, c.n_fft - win - pad))
        self.register_buffer("window", window, persistent=False)
        bank = htk_mel_filterbank if c.mel_scale == "htk" else mel_filterbank
        mel = torch.from_numpy(bank(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax))
        self.register_buffer("mel_t", mel.T.contiguous(), persistent=False)  # (n_freq, F)
        if c.log == "pcen":
            self.register_buffer("pcen_kernel", _pcen_kernel(c.pcen_time_constant * c.sample_rate / c.hop_length),
                                 persistent=False)

    #: Samples of framed audio per chunk on the CPU (~2 MB): the frames, spectrum and power of
    #: a chunk stay in cache, which makes this 3-5x faster than one pass over a large batch.
    #: Larger chunks cross glibc's mmap threshold, and page faults then eat the gain.
    CHUNK_ELEMENTS = 2**19

    def use_conv_stft(self) -> None:
        """Compute the spectrum with a strided convolution over windowed DFT kernels instead of
        unfold + rfft: the same values within float32 rounding, built from ops every ONNX exporter
        knows, and on ONNX Runtime faster than its DFT operator (41 % of an FSDD model's time went
        to DFT and the Gather of the framing). The kernels cover only where the window is nonzero
        (half the taps for a 256-sample window in a 512-point FFT) and only the bins some mel
        filter uses. ``earshot export`` uses it for every model."""
        c = self.config
        nz = torch.nonzero(self.window).flatten()
        first, last = int(nz[0]), int(nz[-1]) + 1  # the window's support within the FFT frame
        bins = torch.nonzero(self.mel_t.abs().sum(1) > 0).flatten()  # FFT bins some filter weighs
        lo, hi = int(bins[0]), int(bins[-1]) + 1
        t = torch.arange(first, last, dtype=torch.float64)
        ang = 2 * torch.pi * torch.arange(lo, hi, dtype=torch.float64)[:, None] * t[None] / c.n_fft
        w = self.window[first:last].double()
        kernels = torch.cat([torch.cos(ang) * w, torch.sin(ang) * w])[:, None].float()  # (2 n_bins, 1, support)
        self.register_buffer("dft_kernels", kernels, persistent=False)
        self.register_buffer("mel_t_conv", self.mel_t[lo:hi].contiguous(), persistent=False)
        # samples cut from the (padded) signal's start and end so that the frames are those of the FFT path
        self._conv_trim = (first, self.window.shape[0] - last)

    def _power_conv(self, x: torch.Tensor) -> torch.Tensor:
        head, tail = self._conv_trim
        x = x[:, head : x.shape[-1] - tail]
        y = nn.functional.conv1d(x[:, None], self.dft_kernels, stride=self.config.hop_length)  # (B, 2 n_bins, T)
        re, im = y.chunk(2, dim=1)
        return (re.square() + im.square()).transpose(1, 2)  # (B, T, n_bins)

    def _logmel(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if hasattr(self, "dft_kernels"):
            if c.center:
                half = c.n_fft // 2
                x = nn.functional.pad(x[:, None], (half, half), mode=c.pad_mode)[:, 0]
            return self._mel_log(self._power_conv(x), self.mel_t_conv)
        if c.center:  # centred frames: pad n_fft // 2 each side with zeros or a reflection
            half = c.n_fft // 2
            x = nn.functional.pad(x[:, None], (half, half), mode=c.pad_mode)[:, 0]
            frames = x.unfold(-1, c.n_fft, c.hop_length) * self.window  # (B, T, n_fft)
        else:  # frames start at t * hop; a short window is zero-padded at the end to n_fft
            frames = x.unfold(-1, self.window.shape[0], c.hop_length) * self.window  # (B, T, win)
        spec = torch.fft.rfft(frames, n=c.n_fft)  # (B, T, n_freq)
        im = spec.imag  # re^2 + im^2 in two passes, not three: 20-25 % faster on this step
        return self._mel_log(torch.addcmul(spec.real.square(), im, im))

    def _mel_log(self, power: torch.Tensor, mel_t: torch.Tensor | None = None) -> torch.Tensor:
        """Power spectrum ``(B, T, n_freq)`` -> log-mel ``(B, T, F)``; ``mel_t`` (the filters' rows
        for the bins in ``power``) defaults to every bin's."""
        c = self.config
        if c.power != 2.0:
            power = power.pow(c.power / 2.0)
        mel = torch.matmul(power, self.mel_t if mel_t is None else mel_t)  # (B, T, F)
        if c.log == "ln":
            return torch.log(mel + c.log_offset)
        return 10.0 * torch.log10(torch.clamp(mel, min=c.amin))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):  # the front-end stays float32 under mixed precision
            return self._forward(x.float())

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        chunk = max(1, self.CHUNK_ELEMENTS // (c.frames(x.shape[-1]) * c.n_fft))
        exporting = torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()
        lib = self._native_kernels(x)
        if lib is not None:
            db = self._logmel_native(x, lib, chunk)
        elif x.device.type != "cpu" or exporting or x.shape[0] <= chunk:
            db = self._logmel(x)
        else:
            db = torch.cat([self._logmel(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)])
        if c.top_db is not None:
            db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - c.top_db)
        if c.log == "pcen":
            return self._pcen(db)
        return db

    def _pcen(self, db: torch.Tensor) -> torch.Tensor:
        """PCEN ``(B, T, F)`` of the mel whose dB are ``db`` (every path computes dB, the fused kernels too).

        The smoother ``M[t] = (1 - s) M[t-1] + s E[t]`` starts in its steady state for the first frame
        (as ``librosa.pcen`` does) and is computed as a causal convolution with its impulse response,
        cut where it falls below 1e-4 of its first tap and renormalised (:func:`_pcen_kernel`): no loop over frames, and it exports."""
        c, kernel = self.config, self.pcen_kernel
        n_bands = db.shape[-1]
        energy = torch.pow(10.0, db * 0.1) * c.pcen_gain  # (B, T, F)
        e = nn.functional.pad(energy.transpose(1, 2), (kernel.shape[-1] - 1, 0), mode="replicate")  # (B, F, T')
        # one depthwise conv over the bands: 10x faster on a CPU than a conv of B * F one-channel rows
        smooth = nn.functional.conv1d(e, kernel.expand(n_bands, 1, -1), groups=n_bands).transpose(1, 2)
        ratio = energy * torch.exp(-c.pcen_alpha * torch.log(smooth + 1e-6))
        return torch.pow(ratio + c.pcen_delta, c.pcen_r) - c.pcen_delta**c.pcen_r

    def _native_kernels(self, x: torch.Tensor):
        """The fused C kernels (:mod:`earshot.features.native`) where they compute exactly what
        :meth:`_logmel` would: float32 on the CPU, eager (not traced, exported or compiled), and
        settings they cover; else ``None``.

        Only where autograd is off (inference, evaluation, validation, serving): training keeps the
        torch ops. The two agree within 2e-5 dB, but in 5 paired FSDD runs (seeds 0-4) training
        through the kernels scored 0.9940 on average against 0.9993, every pair lower by 1-4 test
        clips of 300, and no cause was found (benchmarks/RESULTS.md, 2026-11-23)."""
        c = self.config
        if (x.device.type != "cpu" or torch.is_grad_enabled() or _tracing() or hasattr(self, "dft_kernels")
                or c.power not in (1.0, 2.0)
                or self.window.dtype != torch.float32 or self.mel_t.dtype != torch.float32
                or (c.log_offset if c.log == "ln" else c.amin) < _FLOAT32_TINY):
            return None
        n, length = x.shape[-1], self.window.shape[0]
        if ((c.center and c.pad_mode == "reflect" and n <= c.n_fft // 2)
                or n + 2 * (c.n_fft // 2 if c.center else 0) < length):
            return None  # no whole frame: let torch raise its own error about the padding or the frame
        from earshot.features import native

        return native.load()

    def _logmel_native(self, x: torch.Tensor, lib, chunk: int) -> torch.Tensor:
        """:meth:`_logmel` by the fused kernels, ``chunk`` clips at a time (the frames' buffer reused
        from chunk to chunk), the FFT being torch's."""
        from earshot.features import native

        c = self.config
        if not hasattr(self, "_grouped_mel"):
            self._grouped_mel = native.GroupedMel(self.mel_t, lib.mel_group_size())
        x = x.contiguous()
        half = c.n_fft // 2 if c.center else 0
        length = self.window.shape[0]
        b, n_frames = x.shape[0], (x.shape[-1] + 2 * half - length) // c.hop_length + 1
        frames = torch.empty(min(chunk, b), n_frames, length)
        out = torch.empty(b, n_frames, c.n_mels)
        for i in range(0, b, chunk):
            k = min(chunk, b - i)
            native.window_frames(lib, x[i : i + k], self.window, frames[:k], c.hop_length, half, c.pad_mode == "reflect")
            spec = torch.fft.rfft(frames[:k], n=c.n_fft)  # not out=: that path runs at half the speed
            native.logmel_from_spectrum(lib, spec, self._grouped_mel, out[i : i + k], c.power == 1.0,
                                        "ln" if c.log == "ln" else "db",
                                        c.amin, c.log_offset)
        return out


_FLOAT32_TINY = float(torch.finfo(torch.float32).tiny)  # the native log takes normal numbers only


def _tracing() -> bool:
    """Traced, scripted, exported to ONNX or compiled by dynamo: the graph must hold torch ops only."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())


class Normalize(nn.Module):
    """Per-band standardisation with statistics fitted on the training set: ``(B, T, F)``."""

    def __init__(self, n_bands: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_bands))
        self.register_buffer("std", torch.ones(n_bands))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    @torch.no_grad()
    def set_stats(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.clamp(torch.as_tensor(std, dtype=torch.float32), min=1e-5))


class BandStats:
    """Streaming per-band mean and standard deviation over ``(T, F)`` feature blocks."""

    def __init__(self) -> None:
        self.n = 0
        self.s: np.ndarray | None = None
        self.s2: np.ndarray | None = None

    def update(self, feats: np.ndarray) -> None:
        f = feats.reshape(-1, feats.shape[-1]).astype(np.float64)
        if self.s is None:
            self.s, self.s2 = np.zeros(f.shape[1]), np.zeros(f.shape[1])
        self.n += f.shape[0]
        self.s += f.sum(0)
        self.s2 += (f**2).sum(0)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.n or self.s is None or self.s2 is None:
            raise ValueError("no features seen")
        mean = self.s / self.n
        return mean.astype(np.float32), np.sqrt(np.maximum(self.s2 / self.n - mean**2, 1e-10)).astype(np.float32)


class LogMelInput(nn.Module):
    """Waveform ``(B, N)`` -> normalised log-mel ``(B, T, F)``; the statistics are fitted on training audio."""

    kind = "logmel"

    def __init__(self, config: LogMelConfig, normalize: bool = True):
        super().__init__()
        self.config = config
        self.frontend = LogMel(config)
        # Pretrained networks normalise inside (PANNs' bn0) or not at all (VGGish): no fitted stats.
        self.norm = Normalize(config.n_mels) if normalize else nn.Identity()

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_seconds(self) -> float:
        """Seconds between consecutive feature frames."""
        return self.config.hop_length / self.config.sample_rate

    @property
    def min_samples(self) -> int:
        """Shorter audio than this is zero-padded to fill one STFT window."""
        return self.config.win_length or self.config.n_fft

    @property
    def n_features(self) -> int:
        return self.config.n_mels

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.norm(self.frontend(wave))

    @torch.no_grad()
    def fit(self, waves: Iterable[np.ndarray]) -> None:
        """Per-band mean and std of the log-mel over ``waves`` (each ``(N,)``)."""
        if not isinstance(self.norm, Normalize):
            return
        stats = BandStats()
        for x in waves:
            stats.update(self.frontend(torch.from_numpy(np.asarray(x, np.float32))[None])[0].numpy())
        self.norm.set_stats(*stats.result())


@dataclass
class WaveformConfig:
    """Settings of the raw-waveform input: only the sample rate."""

    sample_rate: int = 22050

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


class Waveform(nn.Module):
    """Waveform ``(B, N)`` passed through unchanged: the input of sample-level models such as SampleCNN."""

    kind = "waveform"
    n_features = 1
    min_samples = 1

    def __init__(self, config: WaveformConfig):
        super().__init__()
        self.config = config

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_seconds(self) -> float:
        return 1.0 / self.config.sample_rate

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return wave

    def fit(self, waves: Iterable[np.ndarray]) -> None:
        """Nothing to fit: the waveform is used as it is."""
