"""Windowed inference over recordings of any length, shared by the PyTorch and ONNX backends.

A recording is read block by block (:class:`~earshot.audio.io.AudioStream`), cut into windows of
``win`` samples every ``hop`` samples as the blocks arrive, and the windows go through the model in
batches. Only the current block, one window's overlap and one batch are held in memory, so an
hour-long file costs no more than a minute-long one. Clip scores pool across windows as they come
(mean or max); a detector's frame probabilities stitch into one timeline, so an event that spans two
windows comes out once. This module imports numpy alone: the backend supplies
:meth:`WindowedInference.window_outputs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from earshot.audio.io import resample, stream_audio, to_mono
from earshot.data.windows import stitch_frames
from earshot.errors import AudioError, ConfigError, DataError, EarshotError
from earshot.inference.results import Detection, Prediction, WindowScores


def iter_windows(blocks: Iterable[np.ndarray], win: int, hop: int, batch: int
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(starts, windows (B, win))`` batches from a stream of sample blocks, at the same starts as
    :func:`~earshot.data.windows.window_starts` on the whole recording: every ``hop`` while a full
    window fits, then one window flush with the end, and a zero-padded window when the recording is
    shorter than one."""
    buf = np.zeros(0, np.float32)
    buf_at = 0  # the recording's sample index of buf[0]
    total, nxt, last = 0, 0, -1
    starts: list[int] = []
    wins: list[np.ndarray] = []

    def take(s: int) -> None:
        w = buf[s - buf_at : s - buf_at + win]
        wins.append(w if len(w) == win else np.pad(w, (0, win - len(w))))
        starts.append(s)

    for b in blocks:
        buf = np.concatenate([buf, np.asarray(b, np.float32)])
        total += len(b)
        while nxt + win <= total:
            take(nxt)
            last, nxt = nxt, nxt + hop
            if len(wins) == batch:
                yield np.array(starts), np.stack(wins)
                starts, wins = [], []
        keep = max(0, min(nxt, total - win))  # the tail window may need the last `win` samples
        buf, buf_at = buf[keep - buf_at :], keep
    if total and last < 0:  # shorter than one window
        take(0)
    elif total and last + win < total:
        take(total - win)
    if wins:
        yield np.array(starts), np.stack(wins)


class WindowedInference:
    """Predict, detect and score windows of files or arrays. Subclasses set ``task``,
    ``sample_rate``, ``win``, ``hop`` (samples), ``pooling``, ``batch_size`` and ``frame_hop``
    (seconds between output frames), and implement :meth:`window_outputs`."""

    task: Any
    sample_rate: int
    win: int
    hop: int
    pooling: str
    batch_size: int
    frame_hop: float
    fixed_input: bool = False  # the model takes exactly `win` samples (no other window length)
    min_samples: int = 1
    #: At most this many samples of audio per model batch: long windows come in smaller batches, so
    #: the model's activations stay bounded whatever ``--window`` is (64 one-second windows at 8 kHz).
    max_batch_samples: int = 2**19

    def window_outputs(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Clip probabilities ``(W, C)`` of each window ``(W, samples)`` and, for frame tasks, frame
        probabilities ``(W, T', C)``."""
        raise NotImplementedError

    @property
    def labels(self) -> list[str]:
        return self.task.labels

    # --- windows ----------------------------------------------------------------------------------
    def set_hop(self, seconds: float) -> None:
        """Seconds between the windows of a clip longer than one window, in place of the checkpoint's."""
        self.hop = self._window_size(None, seconds)[1]

    def _window_size(self, window: float | None, hop: float | None) -> tuple[int, int]:
        win = self.win if window is None else int(round(window * self.sample_rate))
        step = (self.hop if window is None else win) if hop is None else int(round(hop * self.sample_rate))
        if win != self.win and self.fixed_input:
            raise ConfigError(f"this model takes windows of exactly {self.win / self.sample_rate:g} s; "
                              f"--window {window:g} cannot be used")
        if win < self.min_samples:
            raise ConfigError(f"--window {window:g} s is shorter than the model's shortest input "
                              f"({self.min_samples / self.sample_rate:g} s)")
        if step <= 0:
            raise ConfigError(f"--hop must be positive (got {hop})")
        return win, step

    def _outputs(self, blocks: Iterable[np.ndarray], win: int, hop: int
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        batch = max(1, min(self.batch_size, self.max_batch_samples // win))
        for starts, windows in iter_windows(blocks, win, hop, batch):
            probs, frames = self.window_outputs(windows)
            yield starts, probs, frames

    def _pooled(self, blocks: Iterable[np.ndarray], win: int, hop: int, frames_too: bool
                ) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
        """Clip probabilities pooled over every window as they come (mean or max), and the windows'
        frames with their starts when ``frames_too``."""
        if self.pooling not in ("mean", "max"):
            raise DataError("config", f"unknown eval pooling {self.pooling!r} (mean or max)")
        acc: np.ndarray | None = None
        n = 0
        frames: list[np.ndarray] = []
        starts: list[int] = []
        for s, p, f in self._outputs(blocks, win, hop):
            p = p.astype(np.float64)
            if self.pooling == "mean":
                acc = p.sum(0) if acc is None else acc + p.sum(0)
            else:
                acc = p.max(0) if acc is None else np.maximum(acc, p.max(0))
            n += len(p)
            if frames_too and f is not None:
                frames.extend(f)
                starts.extend(int(v) for v in s)
        if acc is None:
            raise EarshotError("no window came out of the recording")
        return (acc / n if self.pooling == "mean" else acc), frames, starts

    # --- arrays -------------------------------------------------------------------------------------
    def prepare(self, x: np.ndarray, sample_rate: int, source: str) -> tuple[np.ndarray, list[str]]:
        """Mono at the model's rate, with a note for each change."""
        notes = []
        x = np.asarray(x, np.float32)
        if x.ndim == 2 and x.shape[0] == 1:
            x = x[0]
        if x.ndim == 2:
            notes.append(f"mixed {x.shape[0]} channels down to mono")
            x = to_mono(x)
        if sample_rate != self.sample_rate:
            notes.append(f"resampled {sample_rate} Hz -> {self.sample_rate} Hz")
            x = resample(x, sample_rate, self.sample_rate)
        if len(x) == 0:
            raise AudioError(source, "zero-length audio (no samples)")
        if not np.isfinite(x).all():
            raise AudioError(source, "holds NaN or inf samples")
        return x, notes

    def predict_array(self, x: np.ndarray, sample_rate: int, top_k: int | None = None,
                      source: str = "<array>") -> Prediction:
        """Predict a waveform ``(N,)`` or ``(C, N)`` at ``sample_rate``."""
        x, notes = self.prepare(x, sample_rate, source)
        clip, _, _ = self._pooled([x], self.win, self.hop, False)
        return Prediction(source, self.task.decode(clip, top_k), clip, notes)

    def detect_array(self, x: np.ndarray, sample_rate: int, source: str = "<array>",
                     window: float | None = None, hop: float | None = None) -> Detection:
        """Events in a waveform ``(N,)`` or ``(C, N)`` of any length."""
        self._need_frames()
        x, notes = self.prepare(x, sample_rate, source)
        return self._detection([x], source, notes, lambda: len(x), window, hop)

    # --- files, streamed ----------------------------------------------------------------------------
    def predict(self, path: str | Path, top_k: int | None = None, window: float | None = None,
                hop: float | None = None) -> Prediction:
        """Predict one audio file of any length, streamed; raises :class:`AudioError` for a bad file."""
        win, step = self._window_size(window, hop)
        stream = stream_audio(path, self.sample_rate)
        clip, _, _ = self._pooled(stream, win, step, False)
        return Prediction(str(path), self.task.decode(clip, top_k), clip, stream.notes())

    def predict_windows(self, path: str | Path, window: float | None = None, hop: float | None = None
                        ) -> Iterator[WindowScores]:
        """Each window's probabilities, in order, with its start and end in seconds (the end is
        clipped to the recording)."""
        win, step = self._window_size(window, hop)
        stream = stream_audio(path, self.sample_rate)
        sr = self.sample_rate
        for starts, probs, _ in self._outputs(stream, win, step):
            for s, p in zip(starts.tolist(), probs):  # a window past the end (padding) ends with the file
                yield WindowScores(str(path), s / sr, min(s + win, stream.samples) / sr, p)

    def detect(self, path: str | Path, window: float | None = None, hop: float | None = None) -> Detection:
        """Events in one audio file of any length, streamed; raises :class:`AudioError` for a bad file."""
        self._need_frames()
        stream = stream_audio(path, self.sample_rate)
        return self._detection(stream, str(path), stream.notes(), lambda: stream.samples, window, hop)

    def _detection(self, blocks: Iterable[np.ndarray], source: str, notes: list[str], length: Any,
                   window: float | None, hop: float | None) -> Detection:
        win, step = self._window_size(window, hop)
        clip, frames, starts = self._pooled(blocks, win, step, True)
        n = length()
        timeline = stitch_frames(frames, starts, self.sample_rate, self.frame_hop, n)
        return Detection(source, self.task.events(timeline, self.frame_hop, clip), clip, timeline,
                         self.frame_hop, n / self.sample_rate, notes)

    def _need_frames(self) -> None:
        if not self.task.frame_outputs:
            raise EarshotError(f"this checkpoint is a {self.task.name} model: use `earshot {self.task.verb}` "
                               "(detection needs a detection checkpoint)")

    def predict_files(self, paths: Sequence[str | Path], top_k: int | None = None, window: float | None = None,
                      hop: float | None = None) -> Iterator[Prediction | AudioError]:
        """Predict many files; a bad file yields its :class:`AudioError` and the rest go on."""
        for p in paths:
            try:
                yield self.predict(p, top_k, window, hop)
            except AudioError as e:
                yield e

    def detect_files(self, paths: Sequence[str | Path], window: float | None = None, hop: float | None = None
                     ) -> Iterator[Detection | AudioError]:
        """Detect events in many files; a bad file yields its :class:`AudioError` and the rest go on."""
        for p in paths:
            try:
                yield self.detect(p, window, hop)
            except AudioError as e:
                yield e

    def window_files(self, paths: Sequence[str | Path], window: float | None = None, hop: float | None = None
                     ) -> Iterator[WindowScores | AudioError]:
        """:meth:`predict_windows` over many files; a bad file yields its :class:`AudioError`."""
        for p in paths:
            try:
                yield from self.predict_windows(p, window, hop)
            except AudioError as e:
                yield e
