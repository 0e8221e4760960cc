"""Shared fixtures: tiny synthesized audio, and the real data in ../shared when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def require_shared(sub: str) -> Path:
    """Path under ../shared/data, or skip the test with a reason."""
    p = SHARED_DATA / sub
    if not p.exists():
        pytest.skip(f"real data not found at {p} (../shared/data is absent in a fresh clone)")
    return p


def tone(sr: int = 16000, seconds: float = 0.5, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """A sine, shaped ``(N,)`` or ``(N, C)`` as soundfile writes it."""
    t = np.arange(int(sr * seconds)) / sr
    x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return x if channels == 1 else np.stack([x * (1 + 0.1 * c) for c in range(channels)], axis=1)


def write_wav(path: Path, x: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, subtype=subtype)
    return path


@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    """ROOT/<class>/*.wav with three classes of tiny synthetic clips."""
    from earshot.data.synth import synth_clip

    rng = np.random.default_rng(0)
    root = tmp_path / "sounds"
    for cls in ("tone", "clicks", "noise_burst"):
        for i in range(6):
            write_wav(root / cls / f"{cls}_{i}.wav", synth_clip(cls, 16000, rng, duration=0.5))
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic train/val/test dataset and its manifest (built once per session)."""
    from earshot.data.sources import prepare
    from earshot.data.synth import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synth")
    make_synthetic_dataset(root, n_per_class=30, classes=("tone", "clicks", "noise_burst", "chirp"), seed=1)
    prepare("folder", root / "manifest.jsonl", root=root)
    return root / "manifest.jsonl"


@pytest.fixture(scope="session")
def trained_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder from a few epochs on the tiny dataset (shared by end-to-end tests)."""
    from earshot.config import load_config
    from earshot.training.run import train

    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(None, [f"data.manifest={tiny_dataset}", f"out_dir={out}", "name=tiny", "trainer.max_epochs=12", "trainer.min_steps=0",
                             "trainer.progress_bar=false", "trainer.accelerator=cpu", "model.name=cnn_small",
                             "data.clip_seconds=0.8", "optim.lr=3e-3", "data.batch_size=8"])
    return train(cfg)


SCENE_NOISE_STD = 0.03  # the std of :func:`scenes`' background noise


@pytest.fixture(scope="session")
def scenes(tmp_path_factory) -> Path:
    """Train/val/test scenes of two tonal classes over noise; some clips weak or unlabelled."""
    from dataclasses import replace

    from earshot.data.manifest import read_manifest, write_manifest
    from earshot.data.soundscapes import SceneSpec, synthesize

    SR = 16000
    root = tmp_path_factory.mktemp("sed")
    for cls, f in (("beep", 1500.0), ("hum", 220.0)):
        for i in range(3):
            write_wav(root / "fg" / cls / f"{cls}{i}.wav", tone(SR, 0.4 + 0.2 * i, f))
    rng = np.random.default_rng(0)
    write_wav(root / "bg" / "room.wav", (SCENE_NOISE_STD * rng.standard_normal(SR * 20)).astype(np.float32))
    clips = []
    for split, n, seed in (("train", 48, 0), ("val", 12, 1), ("test", 8, 2)):
        spec = SceneSpec(n_clips=n, clip_seconds=3.0, sample_rate=SR, ebr_db=(6.0, 12.0), events_per_minute=(40, 60),
                         prefix=split, split=split, seed=seed)
        clips += read_manifest(synthesize(root / "fg", root / "bg", root / split, spec))
    train_clips = [c for c in clips if c.split == "train"]
    for c in train_clips[:8]:  # weak and unlabelled clips in the same training set
        idx = clips.index(c)
        clips[idx] = replace(c, events=[], annotation="weak") if c.labels else c
    for c in train_clips[8:12]:
        clips[clips.index(c)] = replace(c, events=[], labels=[], annotation="unlabelled")
    return write_manifest(root / "manifest.jsonl", clips)


@pytest.fixture(scope="session")
def sed_run(scenes, tmp_path_factory) -> Path:
    """A CRNN detector trained for a few epochs on :func:`scenes` (needs the [sed] extra's metrics)."""
    from earshot.config import load_config
    from earshot.training.run import train

    pytest.importorskip("sed_eval")
    pytest.importorskip("sed_scores_eval")
    out = tmp_path_factory.mktemp("runs")
    return train(load_config(None, [f"data.manifest={scenes}", f"out_dir={out}", "task.name=detection",
                                    "model.name=crnn", "data.clip_seconds=3", "trainer.max_epochs=8", "trainer.min_steps=0",
                                    "trainer.progress_bar=false", "trainer.accelerator=cpu", "optim.lr=3e-3",
                                    "data.batch_size=8"]))
