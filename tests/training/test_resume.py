"""Interrupted training: a run killed with SIGKILL mid-epoch, or stopped with Ctrl-C, resumes with
``earshot train --resume RUN_DIR`` and ends with the same metrics as a run that never stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def overrides(manifest: Path, out: Path, name: str) -> list[str]:
    return [f"data.manifest={manifest}", f"out_dir={out}", f"name={name}", "model.name=cnn_small",
            "data.clip_seconds=0.8", "data.batch_size=8", "trainer.max_epochs=3", "trainer.min_steps=0",
            "trainer.progress_bar=false", "trainer.accelerator=cpu", "trainer.checkpoint_every_n_steps=5",
            "optim.lr=3e-3", "augment.gain_db=6", "augment.specaugment=true", "trainer.baseline=never"]


def run_training(args: list[str], stop_at: int | None = None, how: str = "kill") -> subprocess.CompletedProcess:
    """``train`` in a child process (one thread, as a user's run would be on its own); with
    ``stop_at``, the child sends itself SIGKILL or SIGINT right after that optimizer step."""
    code = f"""
        import os, signal, sys, torch
        torch.set_num_threads(1)
        from earshot.cli import main
        from earshot.training import resume
        stop_at, how = {stop_at!r}, {how!r}
        # as in a terminal: a shell starts background jobs with SIGINT ignored, and earshot leaves that alone
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if stop_at is not None:
            original = resume.Resumable.on_train_batch_end
            def hook(self, trainer, module, outputs, batch, batch_idx):
                original(self, trainer, module, outputs, batch, batch_idx)
                if trainer.global_step == stop_at and not getattr(self, "_sent", False):
                    self._sent = True
                    os.kill(os.getpid(), signal.SIGKILL if how == "kill" else signal.SIGINT)
            resume.Resumable.on_train_batch_end = hook
        sys.exit(main({args!r}))
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=600, cwd=REPO, env=env)


def scores(run: Path) -> dict[str, float]:
    m = json.loads((run / "metrics.json").read_text())
    out = {k: m[k] for k in m["headline"]}
    for line in (run / "predictions.jsonl").read_text().splitlines():
        p = json.loads(line)
        out[p["id"]] = p["confidence"]
    return out


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset, tmp_path_factory) -> dict[str, float]:
    out = tmp_path_factory.mktemp("whole")
    r = run_training(["train", *overrides(tiny_dataset, out, "whole")])
    assert r.returncode == 0, r.stderr[-3000:]
    return scores(only_run(out))


def test_a_run_killed_mid_epoch_resumes_to_the_same_metrics(tiny_dataset, tmp_path, uninterrupted):
    import torch

    r = run_training(["train", *overrides(tiny_dataset, tmp_path, "killed")], stop_at=15, how="kill")
    assert r.returncode == -9  # really killed
    run = only_run(tmp_path)
    ck = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    steps_per_epoch = ck["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] // max(1, ck["epoch"] + 1)
    assert ck["global_step"] == 15 and not (run / "metrics.json").exists()
    assert ck["global_step"] % max(1, steps_per_epoch) != 0 or steps_per_epoch == 0  # mid-epoch
    r = run_training(["train", "--resume", str(run)])
    assert r.returncode == 0, r.stderr[-3000:]
    got = scores(run)
    assert got.keys() == uninterrupted.keys()
    assert max(abs(got[k] - uninterrupted[k]) for k in got) <= 1e-6


def test_ctrl_c_writes_a_checkpoint_prints_the_resume_command_and_resumes_exactly(tiny_dataset, tmp_path,
                                                                                  uninterrupted):
    import torch

    r = run_training(["train", *overrides(tiny_dataset, tmp_path, "stopped")], stop_at=7, how="int")
    run = only_run(tmp_path)
    assert r.returncode == 130, r.stderr[-3000:]
    assert f"resume with: earshot train --resume {run}" in r.stderr and "Traceback" not in r.stderr
    ck = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ck["global_step"] == 8  # the step running when Ctrl-C came was finished, then saved
    r = run_training(["train", "--resume", str(run)])
    assert r.returncode == 0, r.stderr[-3000:]
    got = scores(run)
    assert max(abs(got[k] - uninterrupted[k]) for k in got) <= 1e-6
    from earshot.cli import main  # a finished run has nothing to resume, and says so

    assert main(["train", "--resume", str(run)]) == 2
