"""A short DDP fit on CPU with two processes (gloo), launched the two ways a user would:
Lightning's launcher (``earshot train ... trainer.devices=2 trainer.strategy=ddp``) and torchrun.

Every process is instrumented through a ``sitecustomize`` module on its path: it records which
training examples and validation clips each rank read, and which process wrote each file."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SITECUSTOMIZE = '''
import json, os

LOG = os.environ["EARSHOT_TEST_LOG"]


def _rank():
    import torch.distributed as d
    if d.is_available() and d.is_initialized():
        return d.get_rank()
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))


def _log(kind, value):
    with open(os.path.join(LOG, f"{os.getpid()}.jsonl"), "a") as f:
        f.write(json.dumps({"rank": _rank(), "kind": kind, "value": value}) + "\\n")


_replace = os.replace


def _logged_replace(src, dst, *a, **k):
    _replace(src, dst, *a, **k)
    _log("write", os.path.abspath(dst))


os.replace = _logged_replace

from earshot.data import loading  # noqa: E402

_crop, _window = loading.CropDataset.__getitem__, loading.WindowDataset.__getitem__


def _crop_item(self, key):
    _log("train", [int(v) for v in key])
    return _crop(self, key)


def _window_item(self, ci):
    if self.target is not None:  # the training loop's validation (the Predictor's windows carry none)
        _log("val", int(ci))
    return _window(self, ci)


loading.CropDataset.__getitem__, loading.WindowDataset.__getitem__ = _crop_item, _window_item
'''


def ddp_fit(tiny_dataset: Path, tmp_path: Path, launcher: str) -> tuple[Path, list[dict]]:
    site, log, out = tmp_path / "site", tmp_path / "log", tmp_path / "runs"
    for d in (site, log, out):
        d.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    args = ["train", f"data.manifest={tiny_dataset}", f"out_dir={out}", "name=ddp", "model.name=cnn_small",
            "data.clip_seconds=0.8", "data.batch_size=8", "trainer.max_epochs=2", "trainer.min_steps=0",
            "trainer.progress_bar=false", "trainer.accelerator=cpu", "trainer.precision=32-true",
            "trainer.baseline=never", "trainer.strategy=ddp", "trainer.devices=2"]
    if launcher == "lightning":  # Lightning starts the second process itself
        cmd = [sys.executable, "-m", "earshot", *args]
    else:  # torchrun starts both (devices = processes per node, as Lightning requires)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "earshot",
               *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EARSHOT_TEST_LOG": str(log),
           "PYTHONPATH": os.pathsep.join([str(site), str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-8000:]
    assert r.stdout.count("test accuracy") <= 1, r.stdout  # the result is printed once
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs  # one run folder, shared by both ranks
    events = [json.loads(line) for f in log.glob("*.jsonl") for line in f.read_text().splitlines()]
    return runs[0], events


def check_ddp_run(run: Path, events: list[dict], tiny_dataset: Path) -> None:
    from earshot.checkpoint import load_checkpoint
    from earshot.data.manifest import read_manifest
    from earshot.inference.predictor import Predictor

    # training: each rank took its own positions of the shared order, the same number each epoch
    train = defaultdict(lambda: defaultdict(list))
    for e in events:
        if e["kind"] == "train":
            index, epoch, pos = e["value"]
            train[epoch][e["rank"]].append(pos)
    assert sorted(train) == [0, 1]
    for epoch, by_rank in train.items():
        assert sorted(by_rank) == [0, 1]
        assert len(by_rank[0]) == len(by_rank[1]) > 0
        assert not set(by_rank[0]) & set(by_rank[1])
        assert all(p % 2 == r for r, ps in by_rank.items() for p in ps)
    # validation: every validation clip on exactly one rank, every epoch
    val_clips = [c for c in read_manifest(tiny_dataset) if c.split == "val"]
    seen = defaultdict(list)
    for e in events:
        if e["kind"] == "val":
            seen[e["rank"]].append(e["value"])
    assert sorted(seen) == [0, 1]
    n_epochs = 2
    both = sorted(seen[0] + seen[1])
    assert both == sorted(list(range(len(val_clips))) * n_epochs)
    assert not set(seen[0]) & set(seen[1])
    # files: every one written by rank zero
    writers = {(e["rank"], Path(e["value"]).name) for e in events if e["kind"] == "write" and str(run) in e["value"]}
    assert {name for _, name in writers} >= {"config.yaml", "last.ckpt", "best.ckpt", "metrics.json"}
    assert {rank for rank, _ in writers} == {0}, writers
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    # the validation metrics logged under DDP equal a one-process evaluation of the same weights
    rows = [r for f in (run / "logs").rglob("metrics.csv") for r in csv.DictReader(f.open())]
    last = [r for r in rows if r.get("val/accuracy") and int(r["epoch"]) == n_epochs - 1][-1]
    ck = load_checkpoint(run / "checkpoints" / "last.ckpt")
    one = Predictor(ck.model, ck.task, ck.meta, device="cpu", precision="fp32").evaluate(val_clips)
    for key in ("accuracy", "map_at_3", "nll"):
        if f"val/{key}" in last and key in one:
            assert float(last[f"val/{key}"]) == pytest.approx(one[key], abs=1e-5), key
    assert float(last["val/accuracy"]) == pytest.approx(one["accuracy"], abs=1e-6)


def test_ddp_with_lightnings_launcher(tiny_dataset, tmp_path):
    run, events = ddp_fit(tiny_dataset, tmp_path, "lightning")
    check_ddp_run(run, events, tiny_dataset)


def test_ddp_with_torchrun(tiny_dataset, tmp_path):
    run, events = ddp_fit(tiny_dataset, tmp_path, "torchrun")
    check_ddp_run(run, events, tiny_dataset)


def test_cross_validation_under_ddp(tiny_dataset, tmp_path):
    """Each fold is one DDP run in the same two processes; rank zero evaluates and summarises."""
    from dataclasses import replace

    from earshot.data.manifest import read_manifest, write_manifest

    clips = [replace(c, split=None, fold=i % 2 + 1) for i, c in enumerate(read_manifest(tiny_dataset))]
    manifest = write_manifest(tmp_path / "folds.jsonl", clips)
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "earshot", "cv", f"data.manifest={manifest}", f"out_dir={out}", "name=cv",
           "folds=1,2", "model.name=cnn_small", "data.clip_seconds=0.8", "data.batch_size=8", "trainer.max_epochs=1",
           "trainer.min_steps=0", "trainer.progress_bar=false", "trainer.accelerator=cpu", "trainer.baseline=never",
           "trainer.strategy=ddp", "trainer.devices=2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-8000:]
    summary = json.loads((out / "cv-cv.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [1, 2]
    assert sorted(p.name.split("-")[1] for p in out.iterdir() if p.is_dir()) == ["fold1", "fold2"]
    assert all((Path(f["run"]) / "metrics.json").exists() for f in summary["folds"])
    assert r.stdout.count("2-fold cross-validation") == 1, r.stdout  # printed by rank zero alone


def test_samplers_shard_by_rank(monkeypatch):
    """The rank split without processes: positions ``rank::world`` of one shared order, padded by
    wrapping to equal lengths for training; validation clips once each, unpadded."""
    import earshot.data.loading as loading
    import earshot.distributed as distributed
    from earshot.data.loading import EpochSampler
    from earshot.distributed import ShardSampler

    whole = list(EpochSampler(11, seed=3))
    parts = {}
    for rank in (0, 1, 2):
        monkeypatch.setattr(loading, "rank_and_world", lambda r=rank: (r, 3))
        monkeypatch.setattr(distributed, "rank_and_world", lambda r=rank: (r, 3))
        s = EpochSampler(11, seed=3)
        parts[rank] = list(s)
        assert len(s) == len(parts[rank]) == 4
        s.resume(0, 2)  # resumed after two examples of this rank's share
        assert list(s) == parts[rank][2:]
        assert list(ShardSampler(11)) == list(range(rank, 11, 3))
    positions = sorted(p for part in parts.values() for _, _, p in part)
    assert positions == list(range(12))  # 11 clips padded to 12: one clip drawn twice, no position twice
    assert [k for part in parts.values() for k in part if k[2] < 11] == sorted(whole, key=lambda k: k[2] % 3)

