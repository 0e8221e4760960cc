"""Heads trained on a frozen-embedding cache (``earshot train-head``): seconds, not hours.

The cache from :func:`earshot.inference.embed.embed_manifest` holds each clip's frame embeddings.
A head (:mod:`earshot.models.heads`; by default seed 003's attention pooling: per-class attention
weights over the frames times per-class frame predictions) trains on them with the task's own loss,
picks its best epoch on validation, fits the task's decision state there (temperature,
thresholds), and is scored on the test split. The result is an ordinary earshot checkpoint (the
source's front-end and backbone with the new head), so ``predict``, ``evaluate`` and ``serve`` work
on it unchanged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from earshot.atomic import atomic_write_text
from earshot.data.manifest import Clip, SkipReport, label_list
from earshot.data.sources.common import stable_fraction
from earshot.errors import ConfigError, DataError
from earshot.models.heads import build_head
from earshot.tasks import create_task


@dataclass
class HeadConfig:
    task: str = "classification"
    head: dict[str, Any] | None = None  # default {type: frame, pool: attention}
    epochs: int = 60
    min_steps: int = 500  # small caches get more epochs: at least this many optimizer steps
    lr: float = 3e-3
    weight_decay: float = 1e-3
    batch_size: int = 32
    max_frames: int = 256  # training crops of at most this many frames (shorter clips are tiled)
    val_fraction: float = 0.15  # carved from train when the cache has no validation split
    test_folds: list[int] | None = None  # cross-validation: these folds are the test split
    seed: int = 0


def read_cache(path: str | Path) -> tuple[list[Clip], list[np.ndarray], dict[str, Any]]:
    import h5py

    with h5py.File(path, "r") as h:
        clips = [Clip.from_json(d) for d in json.loads(h.attrs["clips"])]
        frames = [h["frames"][str(i)][()] for i in range(len(clips))]
        attrs = {k: h.attrs[k] for k in h.attrs}
    return clips, frames, attrs


def _splits(clips: Sequence[Clip], cfg: HeadConfig) -> dict[str, list[int]]:
    if cfg.test_folds is not None:
        split = ["test" if c.fold in cfg.test_folds else "train" for c in clips]
    else:
        split = [c.split or "train" for c in clips]
    idx = {s: [i for i, x in enumerate(split) if x == s] for s in ("train", "val", "test")}
    if not idx["val"] and cfg.val_fraction > 0:
        idx["val"] = [i for i in idx["train"] if stable_fraction(clips[i].id, cfg.seed) < cfg.val_fraction]
        idx["train"] = [i for i in idx["train"] if i not in set(idx["val"])]
    if not idx["train"]:
        raise DataError("cache", "no training clips in the embedding cache")
    return idx


def _batch(frames: Sequence[np.ndarray], rng: np.random.Generator, cap: int) -> torch.Tensor:
    """Random crops of at most ``cap`` frames; shorter clips tiled to the batch's length: ``(B, K, D)``."""
    k = min(cap, max(len(f) for f in frames))
    out = []
    for f in frames:
        if len(f) > k:
            s = int(rng.integers(0, len(f) - k + 1))
            f = f[s : s + k]
        out.append(np.resize(f, (k, f.shape[1])) if len(f) < k else f)
    return torch.from_numpy(np.stack(out))


@torch.no_grad()
def _probs(head: torch.nn.Module, task: Any, frames: Sequence[np.ndarray]) -> np.ndarray:
    head.eval()
    return np.stack([task.probabilities(head(torch.from_numpy(f)[None]))[0].numpy() for f in frames])


def train_head(cache: str | Path, out_dir: str | Path, cfg: HeadConfig | None = None) -> dict[str, Any]:
    """Train a head on the cache; write ``best.ckpt`` and ``metrics.json`` under ``out_dir``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is fastest, and never fights for the cores
    try:
        return _train_head(cache, out_dir, cfg or HeadConfig())
    finally:
        torch.set_num_threads(threads)


def _train_head(cache: str | Path, out_dir: str | Path, cfg: HeadConfig) -> dict[str, Any]:
    t0 = time.time()
    clips, frames, attrs = read_cache(cache)
    idx = _splits(clips, cfg)
    skipped = SkipReport()
    labels = label_list([clips[i] for i in idx["train"]])
    task = create_task(cfg.task, labels)
    for part in idx:  # clips the task cannot score (e.g. an unseen label) are reported and left out
        keep = {id(c) for c in task.admit([clips[i] for i in idx[part]], part, skipped)}
        idx[part] = [i for i in idx[part] if id(clips[i]) in keep]
    head_args = dict(cfg.head or {"type": "frame", "pool": "attention"})
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    head = build_head(frames[0].shape[1], len(labels), **head_args)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    target = {i: task.target(clips[i]) for part in idx.values() for i in part}
    best, best_score, history = None, -np.inf, []
    steps_per_epoch = -(-len(idx["train"]) // cfg.batch_size)
    n_epochs = max(cfg.epochs, -(-cfg.min_steps // steps_per_epoch))
    every = max(1, n_epochs // 50)  # about 50 validations, however many epochs
    for epoch in range(n_epochs):
        head.train()
        order = rng.permutation(idx["train"])
        for s in range(0, len(order), cfg.batch_size):
            b = order[s : s + cfg.batch_size]
            out = head(_batch([frames[i] for i in b], rng, cfg.max_frames))
            loss = task.loss(out, {"target": torch.from_numpy(np.stack([target[i] for i in b]))})
            opt.zero_grad()
            loss.backward()
            opt.step()
        if idx["val"] and ((epoch + 1) % every == 0 or epoch == n_epochs - 1):
            rep = task.evaluate(_probs(head, task, [frames[i] for i in idx["val"]]),
                                np.stack([target[i] for i in idx["val"]]))
            score = rep.get(task.monitor)
            history.append(score)
            if score is not None and score > best_score:
                best_score, best = score, {k: v.clone() for k, v in head.state_dict().items()}
    if best is not None:
        head.load_state_dict(best)
    tuned = task.tune(_probs(head, task, [frames[i] for i in idx["val"]]),
                      np.stack([target[i] for i in idx["val"]])) if idx["val"] else {}
    fit_seconds = time.time() - t0
    evaluated = "test" if idx["test"] else "val"
    if not idx[evaluated]:
        raise DataError("cache", "nothing to score: no test split and no validation clips")
    report = task.evaluate(_probs(head, task, [frames[i] for i in idx[evaluated]]),
                           np.stack([target[i] for i in idx[evaluated]]))
    report.update(split=evaluated, n_clips=len(idx[evaluated]), n_train=len(idx["train"]), head=head_args,
                  headline=list(task.headline), fit_seconds=fit_seconds, val_history=history,
                  skipped=len(skipped), **({"calibration": tuned} if "temperature" in tuned else {}))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report["checkpoint"] = str(save_head_checkpoint(attrs, head, head_args, task, out / "best.ckpt", cfg))
    atomic_write_text(out / "metrics.json", json.dumps(report, indent=2, default=str))
    return report


def save_head_checkpoint(attrs: dict[str, Any], head: torch.nn.Module, head_args: dict[str, Any], task: Any,
                         path: Path, cfg: HeadConfig) -> Path:
    """The source's front-end and backbone with the trained head, as an earshot checkpoint."""
    from dataclasses import asdict

    from earshot.checkpoint import build_meta, save_atomic
    from earshot.inference.embed import load_source
    from earshot.models.registry import create_model

    src = json.loads(attrs["source"])
    source_model, _ = load_source(src.get("checkpoint") or src["model"], src.get("pretrained"))
    source_model.train(False)
    d = source_model.describe()
    args = {k: v for k, v in d["args"].items() if k != "n_classes"}
    model = create_model(d["name"], len(task.labels), frontend=d["frontend"], head=head_args, **args)
    own = {k: v for k, v in source_model.state_dict().items() if not k.startswith("head.")}
    own.update({"head." + k: v for k, v in head.state_dict().items()})
    model.load_state_dict(own)
    window = float(attrs.get("window_seconds", 10.0))  # the embedding windows, consecutive as in the cache
    meta = build_meta(model, task, window, window, "mean", {"train_head": asdict(cfg), "source": src})
    save_atomic({"state_dict": {"model." + k: v for k, v in model.state_dict().items()}, "earshot": meta}, path)
    return path


def cross_validate_head(cache: str | Path, out_dir: str | Path, folds: Sequence[int], cfg: HeadConfig | None = None
                        ) -> dict[str, Any]:
    """One head per fold (that fold as test); mean and std of the headline metrics."""
    cfg = cfg or HeadConfig()
    runs = [train_head(cache, Path(out_dir) / f"fold{k}", replace(cfg, test_folds=[int(k)])) for k in folds]
    keys = runs[0]["headline"]
    if any(c is None for c in [r.get(keys[0]) for r in runs]):
        raise ConfigError("a fold could not be scored")
    return {"folds": [{"fold": int(k), **{m: r.get(m) for m in keys}, "fit_seconds": r["fit_seconds"]}
                      for k, r in zip(folds, runs)],
            **{m: {"mean": float(np.mean([r[m] for r in runs])), "std": float(np.std([r[m] for r in runs]))}
               for m in keys if all(r.get(m) is not None for r in runs)},
            "fit_seconds": float(sum(r["fit_seconds"] for r in runs)), "headline": keys}
