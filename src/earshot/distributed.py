"""One training run over several processes (Lightning DDP), whoever launched them.

Three launchers are supported: Lightning's own (``earshot train ... trainer.devices=N
trainer.strategy=ddp`` re-runs the command once per extra device), ``torchrun`` and SLURM. This
module answers the questions each of them leaves open before the trainer exists:

- which process is rank zero (it alone writes the run folder, configs, metrics and reports);
- which run folder every rank shares (rank zero names it and the others learn the name);
- which part of the data this rank reads (:class:`EpochSampler` and :class:`ShardSampler` ask
  :func:`rank_and_world` when they are iterated, after the process group exists);
- the validation outputs of every rank, gathered before a clip's windows are pooled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

RUN_DIR_ENV = "EARSHOT_RUN_DIR"  # the run folder, handed to processes launched by Lightning


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of the started process group; ``(0, 1)`` when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_rank_zero() -> bool:
    """Whether this process is (or will be) global rank zero. Before the process group starts,
    the launcher's variables say: ``RANK`` (torchrun), ``SLURM_PROCID`` (SLURM with several tasks),
    ``NODE_RANK`` and ``LOCAL_RANK`` (Lightning's launcher)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    env = os.environ
    if "RANK" in env:
        return int(env["RANK"]) == 0
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return int(env["SLURM_PROCID"]) == 0
    return int(env.get("NODE_RANK", "0")) == 0 and int(env.get("LOCAL_RANK", "0")) == 0


def _external_launch() -> bool:
    """Started by torchrun (or anything that sets ``RANK``/``WORLD_SIZE`` and a rendezvous address)."""
    env = os.environ
    return int(env.get("WORLD_SIZE", "1")) > 1 and "RANK" in env and "MASTER_ADDR" in env


def start_process_group(accelerator: str) -> None:
    """Join the process group now, as Lightning would later (it reuses a started one): NCCL for
    GPUs, else gloo."""
    if dist.is_initialized():
        return
    gpu = accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if gpu else "gloo")


def shared_run_dir(make: Callable[[str | None], Path], accelerator: str, launches_more: bool) -> Path:
    """The run folder, the same on every rank. ``make(tag)`` names a new one (and creates it on
    rank zero): after the time, or after ``tag`` when one is given.

    - a started process group (a later run in the same processes, e.g. the next fold): rank zero
      makes it and sends its name;
    - a process started by Lightning's launcher finds the name in ``EARSHOT_RUN_DIR``;
    - torchrun: the process group is started here, then as above;
    - SLURM (several tasks, no rendezvous address yet): named after the job.
    With ``launches_more`` (this process is about to start Lightning's launcher) the name is put
    where the processes it starts will find it."""
    if not (dist.is_available() and dist.is_initialized()):
        handed = os.environ.pop(RUN_DIR_ENV, None)
        if handed:
            return Path(handed)
        if _external_launch():
            start_process_group(accelerator)
        elif int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
            return make(f"slurm{os.environ['SLURM_JOB_ID']}")
    rank, world = rank_and_world()
    if world > 1:
        name = [str(make(None)) if rank == 0 else None]
        dist.broadcast_object_list(name, src=0)
        return Path(str(name[0]))
    run = make(None)
    if launches_more:
        os.environ[RUN_DIR_ENV] = str(run)
    return run


def gather(obj: Any) -> list[Any]:
    """``obj`` from every rank, in rank order (just ``[obj]`` without a process group)."""
    rank, world = rank_and_world()
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool) -> bool:
    """True on every rank if it is true on any (e.g. one rank received Ctrl-C)."""
    rank, world = rank_and_world()
    if world == 1:
        return flag
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"  # NCCL reduces GPU tensors only
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if rank_and_world()[1] > 1:
        dist.barrier()


class ShardSampler(torch.utils.data.Sampler):
    """Indices ``rank, rank + world, ...`` of ``range(n)``: every item on exactly one rank, none
    repeated to even out the ranks, so a metric over the gathered outputs counts each clip once.
    (Validation only: the ranks may run a different number of batches.)"""

    def __init__(self, n: int):
        self.n = n

    def __iter__(self) -> Any:
        rank, world = rank_and_world()
        return iter(range(rank, self.n, world))

    def __len__(self) -> int:
        rank, world = rank_and_world()
        return len(range(rank, self.n, world))
