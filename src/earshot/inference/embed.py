"""Frozen embeddings: run a backbone once over a manifest and keep what it sees, so that heads train
on the cache in seconds (``earshot embed``, then ``earshot train-head``).

The cache is one HDF5 file:

- ``frames/<i>``: clip ``i``'s frame embeddings ``(T', D)``, one every ``frame_hop`` seconds (the
  clip read in windows of ``window_seconds``, their frames concatenated);
- ``clip_mean`` and ``clip_max`` ``(N, D)``: the clip-level embeddings (mean and max over frames);
- attributes: ``clips`` (the manifest records as JSON: labels, splits, folds travel with the
  cache), ``model`` (the source model's description), ``source`` (a checkpoint path, or a model
  name and its pretrained weights), ``frame_hop``, ``sample_rate``, ``skipped`` (JSON).

The source is an earshot checkpoint (its model's backbone) or a registered model name with its
published weights (``pretrained``), e.g. ``panns_cnn14`` with ``Cnn14_mAP=0.431.pth``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from earshot.audio.io import load_audio
from earshot.data.manifest import SkipReport, read_manifest
from earshot.errors import EarshotError
from earshot.models.registry import AudioModel, create_model, model_spec


def load_source(source: str, pretrained: str | None = None) -> tuple[AudioModel, dict[str, Any]]:
    """The model whose backbone embeds: from an earshot checkpoint, or a registered name (+ weights)."""
    if Path(source).exists():
        from earshot.checkpoint import load_checkpoint, resolve

        ck = load_checkpoint(source)
        return ck.model, {"checkpoint": str(resolve(source)), "window_seconds": ck.meta["inference"]["clip_seconds"]}
    try:
        model_spec(source)
    except EarshotError:
        raise EarshotError(f"{source}: neither a checkpoint file nor a registered model name") from None
    return create_model(source, 1, pretrained=pretrained), {"model": source, "pretrained": pretrained}


@torch.no_grad()
def clip_frames(model: AudioModel, x: np.ndarray, window: int) -> np.ndarray:
    """Frame embeddings ``(T', D)`` of a waveform read in consecutive windows of ``window`` samples,
    each zero-padded to the full window as the predictor pads them, so that a head sees at training
    what it will see at prediction."""
    n = model.input_samples or window
    out = []
    for i in range(0, max(len(x), 1), n):
        c = np.pad(x[i : i + n], (0, max(0, n - len(x[i : i + n]))))
        out.append(model.embed(torch.from_numpy(np.ascontiguousarray(c, np.float32))[None])[0].numpy())
    return np.concatenate(out).astype(np.float32)


def embed_manifest(source: str, manifest: str | Path, out: str | Path, pretrained: str | None = None,
                   window_seconds: float | None = None, split: str | None = None,
                   allow_outside_root: bool = False) -> dict[str, Any]:
    """Embed every readable clip of ``manifest`` (``split`` only, if given) into the HDF5 ``out``.
    Windows are the source checkpoint's inference windows, else ``window_seconds`` (default 10 s)."""
    import h5py

    model, src = load_source(source, pretrained)
    if window_seconds is None:
        window_seconds = float(src.pop("window_seconds", None) or 10.0)
    model.eval()
    skipped = SkipReport()
    clips = [c for c in read_manifest(manifest, allow_outside_root=allow_outside_root, skipped=skipped)
             if split is None or c.split == split]
    window = int(round(window_seconds * model.sample_rate))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    t0, kept, means, maxes, seconds = time.time(), [], [], [], 0.0
    with h5py.File(tmp, "w") as h:
        g = h.create_group("frames")
        for c in clips:
            try:
                x, _ = load_audio(c.path, model.sample_rate)
            except EarshotError as e:
                skipped.add(c.path, str(e))
                continue
            f = clip_frames(model, x, window)
            g.create_dataset(str(len(kept)), data=f)
            means.append(f.mean(0))
            maxes.append(f.max(0))
            kept.append(c)
            seconds += len(x) / model.sample_rate
        if not kept:
            raise EarshotError(f"{manifest}: no clip could be embedded ({len(skipped)} skipped)")
        h.create_dataset("clip_mean", data=np.stack(means))
        h.create_dataset("clip_max", data=np.stack(maxes))
        h.attrs.update(clips=json.dumps([c.to_json() for c in kept]), model=json.dumps(model.describe()),
                       source=json.dumps(src), frame_hop=model.frame_hop_seconds, sample_rate=model.sample_rate,
                       window_seconds=window_seconds,
                       skipped=json.dumps([{"path": s.path, "reason": s.reason} for s in skipped.items]))
    tmp.replace(out)
    wall = time.time() - t0
    return {"cache": str(out), "n_clips": len(kept), "skipped": len(skipped), "dim": int(means[0].shape[0]),
            "audio_seconds": seconds, "wall_seconds": wall, "seconds_per_audio_hour": wall / max(seconds, 1e-9) * 3600}
