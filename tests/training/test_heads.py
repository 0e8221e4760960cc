"""Frozen embeddings: `earshot embed`, then a head trained on the cache in seconds."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from earshot.checkpoint import load_checkpoint
from earshot.cli import main
from earshot.data.manifest import read_manifest, write_manifest
from earshot.inference.predictor import Predictor


def test_embed_then_train_head_reuses_a_trained_backbone(trained_run, tiny_dataset, tmp_path, capsys):
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    clips = read_manifest(tiny_dataset)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF")
    from dataclasses import replace

    manifest = write_manifest(tmp_path / "m.jsonl", clips + [replace(clips[0], id="broken", path=str(broken))])
    assert main(["embed", str(ckpt), str(manifest), "-o", str(tmp_path / "emb.h5")]) == 0
    assert "skipped 1" in capsys.readouterr().out
    with h5py.File(tmp_path / "emb.h5") as h:
        n = len(json.loads(h.attrs["clips"]))
        assert n == len(clips) and h["clip_mean"].shape[0] == n and h["frames"]["0"].ndim == 2
        assert "broken.wav" in h.attrs["skipped"]
    assert main(["train-head", str(tmp_path / "emb.h5"), "-o", str(tmp_path / "head"), "--epochs", "40"]) == 0
    m = json.loads((tmp_path / "head" / "metrics.json").read_text())
    assert m["accuracy"] >= 0.75 and m["split"] == "test" and m["fit_seconds"] < 60
    # an ordinary checkpoint: the source backbone with the new attention head
    ck = load_checkpoint(tmp_path / "head" / "best.ckpt")
    assert ck.model.head_args == {"type": "frame", "pool": "attention"}
    src = load_checkpoint(ckpt).model.state_dict()
    assert all(np.array_equal(ck.model.state_dict()[k], v) for k, v in src.items() if k.startswith("backbone."))
    test = [c for c in clips if c.split == "test"]
    rep = Predictor(ck.model, ck.task, ck.meta).evaluate(test)
    assert rep["accuracy"] >= 0.7


def test_head_cross_validation_over_folds(tmp_path, monkeypatch):
    import torch

    from earshot.data.manifest import Clip
    from earshot.training.heads import HeadConfig, cross_validate_head

    rng = np.random.default_rng(0)
    clips, frames = [], []
    for i in range(60):
        y = i % 3
        clips.append(Clip(id=f"c{i}", path=f"c{i}.wav", duration=1.0, sample_rate=16000, channels=1,
                          labels=["abc"[y]], fold=1 + i % 5))
        f = rng.normal(size=(int(rng.integers(3, 9)), 8)).astype(np.float32)
        f[:, y] += 2.0
        frames.append(f)
    with h5py.File(tmp_path / "c.h5", "w") as h:
        g = h.create_group("frames")
        for i, f in enumerate(frames):
            g.create_dataset(str(i), data=f)
        h.attrs.update(clips=json.dumps([c.to_json() for c in clips]), source=json.dumps({"model": "cnn_small"}))
    from earshot.training import heads

    monkeypatch.setattr(heads, "save_head_checkpoint", lambda *a, **k: tmp_path / "skipped.ckpt")  # no backbone
    s = cross_validate_head(tmp_path / "c.h5", tmp_path / "cv", [1, 2, 3, 4, 5], HeadConfig(epochs=30))
    assert s["accuracy"]["mean"] > 0.8 and len(s["folds"]) == 5  # chance: 0.33
