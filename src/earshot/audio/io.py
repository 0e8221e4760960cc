"""Audio decoding (soundfile), resampling (soxr), mixdown and pad/crop.

Every failure raises :class:`earshot.errors.AudioError` naming the file and the cause.
Arrays are float32, shaped ``(C, N)`` for multi-channel and ``(N,)`` once mixed down.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import soundfile as sf
import soxr

from earshot.errors import AudioError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus")

#: Peak amplitude below which a clip counts as all-silent (-100 dBFS).
SILENCE_PEAK = 1e-5


@dataclass(frozen=True)
class AudioInfo:
    """What a header (plus a full decode, when validated) says about a file."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    subtype: str
    peak: float | None = None

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True)
class WavSamples:
    """Where a plain WAV's samples lie: 16-bit integer or 32-bit float PCM, interleaved."""

    offset: int
    frames: int
    channels: int
    sample_rate: int
    dtype: str  # "<i2" or "<f4"


def _check_wav_truncation(path: Path, size: int | None = None) -> WavSamples | None:
    """Raise if a RIFF/WAVE header promises more audio bytes than the file holds.

    libsndfile quietly decodes what is there, so a half-copied WAV would otherwise pass. Returns where
    the samples lie when the file is 16-bit integer or 32-bit float PCM (plain or WAVE_FORMAT_EXTENSIBLE),
    which :func:`_decode` then reads straight into an array; None leaves decoding to libsndfile.
    """
    size = path.stat().st_size if size is None else size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos, fmt = 12, None
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt " and csize >= 16:
                body = f.read(min(csize, 40))
                if len(body) < 16:
                    return None
                tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", body[:16])
                if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first two bytes
                    tag = struct.unpack("<H", body[24:26])[0]
                fmt = (tag, channels, rate, align, bits)
            elif cid == b"data":
                have = size - pos - 8
                if csize != 0xFFFFFFFF and csize > have:
                    raise AudioError(path, f"truncated WAV: header declares {csize} bytes of audio, file holds {have}")
                if fmt is None or csize == 0xFFFFFFFF:
                    return None
                tag, channels, rate, align, bits = fmt
                dtype = {(1, 16): "<i2", (3, 32): "<f4"}.get((tag, bits))
                # other rates (0, 4 GHz in a corrupt header) and layouts: libsndfile judges them
                if dtype is None or channels < 1 or not 1 <= rate <= 768_000 or align != channels * bits // 8:
                    return None
                return WavSamples(pos + 8, csize // align, channels, rate, dtype)
            pos += 8 + csize + (csize & 1)
    return None


def _open_checked(path: str | Path) -> Path:
    return _inspect(path)[0]


def _inspect(path: str | Path) -> tuple[Path, WavSamples | None]:
    """The file, checked to exist and hold something, and where a plain WAV's samples lie (one stat)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        raise AudioError(p, "file not found") from None
    except OSError as e:
        raise AudioError(p, f"cannot be read ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(p, "is a directory, not an audio file")
    if st.st_size == 0:
        raise AudioError(p, "empty file (0 bytes)")
    if p.suffix.lower() == ".wav":
        return p, _check_wav_truncation(p, st.st_size)
    return p, None


def probe_audio(path: str | Path, decode: bool = False) -> AudioInfo:
    """Read a file's header; with ``decode=True`` also decode it fully to check samples.

    A decoded check rejects zero-length audio and NaN/inf samples, and records the peak.
    """
    p = _open_checked(path)
    try:
        info = sf.info(str(p))
    except Exception as e:  # libsndfile raises several types
        raise AudioError(p, f"not a readable audio file ({_short(e)})") from None
    if info.frames <= 0 and not decode:
        raise AudioError(p, "zero-length audio (no samples)")
    peak = None
    frames = info.frames
    if decode:
        x, _ = _decode(p)
        frames = x.shape[1]
        peak = float(np.max(np.abs(x))) if x.size else 0.0
    return AudioInfo(str(p), int(info.samplerate), int(info.channels), int(frames), str(info.subtype), peak)


def _short(e: Exception) -> str:
    """libsndfile's reason without its "Error opening 'PATH': " prefix (the error names the file)."""
    msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    msg = re.sub(r"^Error opening\s+'.*?':\s*", "", msg)
    return msg.replace("Error opening", "").strip(" :'") or type(e).__name__


def _decode(p: Path, wav: WavSamples | None = None) -> tuple[np.ndarray, int]:
    """``(C, N)`` float32 samples: 16-bit and float WAVs read straight from the file (as libsndfile
    scales them: integers / 32768, floats as they are), everything else through libsndfile."""
    if wav is not None:
        with open(p, "rb") as f:
            f.seek(wav.offset)
            raw = np.fromfile(f, dtype=wav.dtype, count=wav.frames * wav.channels)
        frames = raw.size // wav.channels
        if frames == 0:
            raise AudioError(p, "zero-length audio (no samples)")
        x = raw[: frames * wav.channels].astype(np.float32)
        if wav.dtype == "<i2":
            x *= np.float32(1.0 / 32768.0)
        x = x.reshape(1, frames) if wav.channels == 1 else np.ascontiguousarray(x.reshape(frames, wav.channels).T)
        sr = wav.sample_rate
    else:
        try:
            x, sr = sf.read(str(p), dtype="float32", always_2d=True)
        except Exception as e:
            raise AudioError(p, f"not a readable audio file ({_short(e)})") from None
        if x.shape[0] == 0:
            raise AudioError(p, "zero-length audio (no samples)")
        x = np.ascontiguousarray(x.T)
    if (wav is None or wav.dtype != "<i2") and not np.isfinite(x).all():  # integers are always finite
        bad = int((~np.isfinite(x)).sum())
        raise AudioError(p, f"holds {bad} NaN or inf samples")
    return x, int(sr)  # (C, N)


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average channels: ``(C, N)`` or ``(N,)`` -> ``(N,)``."""
    if x.ndim == 1:
        return x
    return x[0] if x.shape[0] == 1 else x.mean(axis=0)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample along the last axis with soxr (high quality)."""
    if sr_in == sr_out:
        return x
    if x.ndim == 1:
        return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(soxr.resample(x.T, sr_in, sr_out, quality="HQ").T.astype(np.float32))


def load_audio(
    path: str | Path, sample_rate: int | None = None, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Decode a file to float32, optionally resampled and mixed down.

    Returns ``(samples, sample_rate)`` with samples ``(N,)`` if ``mono`` else ``(C, N)``.
    """
    p, wav = _inspect(path)
    x, sr = _decode(p, wav)
    if mono:
        x = to_mono(x)
    if sample_rate is not None and sample_rate != sr:
        x = resample(x, sr, sample_rate)
        sr = sample_rate
    return x, sr


class AudioStream:
    """A file decoded block by block, mixed to mono and resampled as it goes, so a recording of any
    length is read in bounded memory: ``for block in stream_audio(path, 16000): ...``.

    Blocks come from soundfile; resampling uses soxr's streaming resampler (``ResampleStream``),
    whose state carries across blocks. ``channels``, ``source_rate`` and ``frames`` describe the
    file; ``samples`` counts what has been yielded so far at ``sample_rate``.
    """

    def __init__(self, path: str | Path, sample_rate: int | None = None, block_seconds: float = 30.0):
        self.path = _open_checked(path)
        try:
            self._file = sf.SoundFile(str(self.path))
        except Exception as e:
            raise AudioError(self.path, f"not a readable audio file ({_short(e)})") from None
        self.source_rate = int(self._file.samplerate)
        self.channels = int(self._file.channels)
        self.frames = int(self._file.frames)
        self.sample_rate = sample_rate or self.source_rate
        self.block = max(1, int(block_seconds * self.source_rate))
        self.samples = 0

    def __enter__(self) -> "AudioStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def notes(self) -> list[str]:
        """What the stream changes, in the words :class:`Predictor` uses."""
        out = [f"mixed {self.channels} channels down to mono"] if self.channels > 1 else []
        if self.source_rate != self.sample_rate:
            out.append(f"resampled {self.source_rate} Hz -> {self.sample_rate} Hz")
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        rs = (soxr.ResampleStream(self.source_rate, self.sample_rate, 1, dtype="float32", quality="HQ")
              if self.source_rate != self.sample_rate else None)
        read = 0
        try:
            while True:
                try:
                    x = self._file.read(self.block, dtype="float32", always_2d=True)
                except Exception as e:
                    raise AudioError(self.path, f"decoding failed after {read} frames ({_short(e)})") from None
                last = len(x) < self.block
                if len(x) and not np.isfinite(x).all():
                    raise AudioError(self.path, f"holds NaN or inf samples (in the block at {read / self.source_rate:.1f} s)")
                read += len(x)
                y = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
                if rs is not None:
                    y = rs.resample_chunk(np.ascontiguousarray(y), last=last)
                if len(y):
                    self.samples += len(y)
                    yield y
                if last:
                    break
        finally:
            self._file.close()
        if read == 0:
            raise AudioError(self.path, "zero-length audio (no samples)")


def stream_audio(path: str | Path, sample_rate: int | None = None, block_seconds: float = 30.0) -> AudioStream:
    """Mono float32 blocks of ``path`` at ``sample_rate`` (see :class:`AudioStream`)."""
    return AudioStream(path, sample_rate, block_seconds)


def fix_length(x: np.ndarray, length: int, offset: int = 0) -> np.ndarray:
    """Crop ``x`` (last axis) to ``length`` samples from ``offset``, zero-padding where it runs out."""
    out = np.zeros(x.shape[:-1] + (length,), dtype=x.dtype)
    if offset >= 0:
        seg = x[..., offset : offset + length]
        out[..., : seg.shape[-1]] = seg
    else:  # negative offset: the clip starts inside the window
        seg = x[..., : max(0, length + offset)]
        out[..., -offset : -offset + seg.shape[-1]] = seg
    return out


def list_audio(paths: Sequence[str | Path]) -> list[Path]:
    """Expand folders into their audio files (recursively); files are kept as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS))
        else:
            out.append(p)
    return out
