"""What the web page at ``GET /`` draws for one upload: a waveform envelope, a log-mel picture,
the model's scores and, for a detector, its events and frame probabilities.

Everything is computed here and sent as compact JSON (the spectrogram as base64 bytes), so the page
itself is one static HTML file with no build step and nothing fetched from elsewhere.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

MAX_COLUMNS = 1200  # time columns of the pictures sent to the page
TOP_BARS = 10


@lru_cache(maxsize=1)
def page_html() -> str:
    """The page, from the package's data."""
    return resources.files("earshot.serve").joinpath("static/index.html").read_text(encoding="utf-8")


def envelope(x: np.ndarray, columns: int = MAX_COLUMNS) -> list[list[float]]:
    """``[min, max]`` of each of at most ``columns`` equal slices of ``x``."""
    n = max(1, min(columns, len(x)))
    edges = np.linspace(0, len(x), n + 1).astype(int)
    return [[round(float(x[a:b].min()), 4), round(float(x[a:b].max()), 4)] for a, b in zip(edges[:-1], edges[1:])
            if b > a]


def spectrogram(x: np.ndarray, sr: int, columns: int = MAX_COLUMNS) -> dict[str, Any]:
    """A 64-band log-mel (10 ms hop, 80 dB range) as rows of bytes, time pooled (max) to at most
    ``columns`` columns: ``{data: base64 (frames x mels, uint8), frames, mels, seconds_per_frame, db_max}``."""
    import torch

    from earshot.features.frontends import LogMel, LogMelConfig

    hop = max(1, sr // 100)
    mel = LogMel(LogMelConfig(sample_rate=sr, n_fft=1024 if sr >= 16000 else 512, hop_length=hop, n_mels=64))
    with torch.no_grad():
        lm = mel(torch.from_numpy(np.ascontiguousarray(x, np.float32))[None])[0].numpy()  # (T, F)
    step = int(np.ceil(len(lm) / columns))
    if step > 1:
        pad = (-len(lm)) % step
        lm = np.concatenate([lm, np.full((pad, lm.shape[1]), lm.min())]).reshape(-1, step, lm.shape[1]).max(1)
    top = float(lm.max())
    q = np.clip((lm - (top - 80.0)) / 80.0 * 255.0, 0, 255).astype(np.uint8)
    return {"data": base64.b64encode(q.tobytes()).decode(), "frames": int(q.shape[0]), "mels": int(q.shape[1]),
            "seconds_per_frame": hop * step / sr, "db_max": round(top, 2)}


def analyze(pred: Any, x: np.ndarray, sr: int, name: str) -> dict[str, Any]:
    """The page's data for one decoded upload ``x`` (``(N,)`` or ``(C, N)`` at ``sr``)."""
    mono, notes = pred.prepare(x, sr, name)
    task = pred.task
    out: dict[str, Any] = {"file": name, "duration": round(len(mono) / pred.sample_rate, 3), "task": task.name,
                           "notes": notes, "waveform": envelope(mono), "spectrogram": spectrogram(mono, pred.sample_rate)}
    if task.frame_outputs:
        det = pred.detect_array(mono, pred.sample_rate, source=name)
        probs = det.probs
        out["events"] = det.to_dict()["events"]
        f = det.frames
        step = int(np.ceil(len(f) / MAX_COLUMNS))
        if step > 1:
            f = np.concatenate([f, np.repeat(f[-1:], (-len(f)) % step, 0)]).reshape(-1, step, f.shape[1]).max(1)
        out["frames"] = {"labels": task.labels, "seconds_per_frame": det.hop * step,
                         "data": np.round(f, 3).T.tolist()}  # (C, T)
        best: dict[str, float] = {}  # a detector's verdict: the classes it found events of
        for _, _, lab, conf in det.events:
            best[lab] = max(best.get(lab, 0.0), conf)
        shown = sorted(best.items(), key=lambda kv: -kv[1])
    else:
        p = pred.predict_array(mono, pred.sample_rate, source=name)
        probs, shown = p.probs, p.top
    if task.name == "classification":  # the top classes (merged classes summed), as decoded
        out["scores"] = [{"label": lab, "score": round(v, 4)} for lab, v in task.decode(probs, TOP_BARS)]
    else:  # the most probable tags, each with its decision threshold
        order = np.argsort(-np.asarray(probs))[:TOP_BARS]
        out["scores"] = [{"label": task.labels[i], "score": round(float(probs[i]), 4),
                          "threshold": round(float(task.thresholds[i]), 4)} for i in order]
    if task.name == "classification":
        shown = shown[:1]  # the decision is the arg-max; the bars show the runners-up
    out["decision"] = [{"label": lab, "score": round(s, 4)} for lab, s in shown]
    return out
