"""The training driver: config in, run folder out (checkpoints, config, metrics, plots)."""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from earshot.config import RunConfig, from_dict, save_config, to_dict
from earshot.data.augment import WaveformAugment
from earshot.data.loading import AudioStore, CropDataset, WindowDataset, balanced_sampler
from earshot.data.manifest import Clip, SkipReport, label_list, read_manifest
from earshot.data.sources import prepare
from earshot.data.sources.common import stable_fraction
from earshot.errors import ConfigError, DataError
from earshot.features.frontends import BandStats
from earshot.models.registry import AudioModel, create_model
from earshot.tasks import create_task

log = logging.getLogger("earshot")


@dataclass
class Splits:
    train: list[Clip]
    val: list[Clip]
    test: list[Clip]


def split_clips(clips: list[Clip], cfg: RunConfig, skipped: SkipReport) -> tuple[Splits, list[str]]:
    """Train/val/test clips and the label list; clips with unknown labels are reported."""
    d = cfg.data
    if d.test_folds is not None or d.val_folds is not None:  # folds decide the split (cross-validation)
        test_f, val_f = set(d.test_folds or []), set(d.val_folds or [])
        missing = [c.path for c in clips if c.fold is None]
        if missing:
            raise DataError(d.manifest, f"{len(missing)} clip(s) have no fold (e.g. {missing[0]}); "
                                        "data.test_folds needs a manifest with folds")
        clips = [replace(c, split="test" if c.fold in test_f else "val" if c.fold in val_f else d.train_split)
                 for c in clips]
    train = [c for c in clips if c.split == d.train_split or c.split is None]
    val = [c for c in clips if c.split == d.val_split]
    test = [c for c in clips if c.split == d.test_split]
    if not train:
        raise DataError(d.manifest, f"no training clips (split {d.train_split!r})")
    if not val:  # carve a stable validation part from train
        val = [c for c in train if stable_fraction(c.id, cfg.seed) < d.val_fraction]
        train = [c for c in train if stable_fraction(c.id, cfg.seed) >= d.val_fraction]
    labels = list(d.labels) if d.labels else label_list(train)
    known = set(labels)

    def keep(cs: list[Clip], where: str) -> list[Clip]:
        out = []
        for c in cs:
            if len(c.labels) != 1:
                skipped.add(c.path, f"{where} clip has {len(c.labels)} labels; classification needs exactly one")
            elif c.label not in known:
                skipped.add(c.path, f"{where} clip label {c.label!r} is absent from the training labels")
            else:
                out.append(c)
        return out

    return Splits(keep(train, "train"), keep(val, "val"), keep(test, "test")), labels


def fit_normalization(model: AudioModel, clips: list[Clip], store: AudioStore, cfg: RunConfig) -> None:
    """Per-band mean/std of the log-mel over (up to ``stats_clips``) training clips."""
    rng = np.random.default_rng(cfg.seed)
    chosen = [clips[i] for i in sorted(rng.permutation(len(clips))[: cfg.data.stats_clips])]
    stats = BandStats()
    cache = None
    if cfg.data.feature_cache:
        from earshot.features.cache import FeatureCache

        cache = FeatureCache(cfg.data.feature_cache, model.frontend_config)
    with torch.no_grad():
        for c in chosen:
            def compute(c: Clip = c) -> np.ndarray:
                return model.frontend(torch.from_numpy(store[c.id])[None])[0].numpy()

            stats.update(cache.get(c.path, compute) if cache else compute())
    if cache:
        cache.close()
    model.norm.set_stats(*stats.result())


def new_run_dir(cfg: RunConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run = Path(cfg.out_dir) / f"{cfg.name}-{stamp}"
    i = 1
    while run.exists():
        run = Path(cfg.out_dir) / f"{cfg.name}-{stamp}-{i}"
        i += 1
    run.mkdir(parents=True)
    return run


def _quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*number of training batches.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*torch.jit.*")
    warnings.filterwarnings("ignore", ".*no `val_dataloader`.*")


def ensure_manifest(cfg: RunConfig) -> Path:
    """The manifest path; runs ``data.prepare`` first when the manifest does not exist yet."""
    m = Path(cfg.data.manifest) if cfg.data.manifest else None
    if m is None:
        raise ConfigError("data.manifest is not set (a JSONL written by `earshot prepare`)")
    if not m.exists() and cfg.data.prepare:
        spec = dict(cfg.data.prepare)
        source = spec.pop("source", None)
        if source is None:
            raise ConfigError("data.prepare needs a 'source' (folder, csv, fsdd)")
        res = prepare(source, m, **spec)
        log.info("prepared %s: %d clips, %d skipped", m, len(res.clips), len(res.skipped))
    return m


def train(cfg: RunConfig, resume: str | Path | None = None) -> Path:
    """Train, keep best/last checkpoints, evaluate the best on the test split; return the run folder.

    With ``resume`` (a run folder), the saved config is reused and training continues from
    ``checkpoints/last.ckpt``.
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from earshot.inference.evaluation import write_evaluation
    from earshot.inference.predictor import Predictor
    from earshot.training.checkpoint import build_meta, load_checkpoint
    from earshot.training.module import EarshotModule

    _quiet_lightning()
    ckpt_path = None
    if resume is not None:
        run = Path(resume)
        import yaml

        cfg = from_dict(RunConfig, yaml.safe_load((run / "config.yaml").read_text()))
        ckpt_path = run / "checkpoints" / "last.ckpt"
        if not ckpt_path.exists():
            raise DataError(ckpt_path, "no last checkpoint to resume from")
    else:
        run = new_run_dir(cfg)
    L.seed_everything(cfg.seed, verbose=False)
    t0 = time.time()
    manifest = ensure_manifest(cfg).resolve()
    cfg = replace(cfg, data=replace(cfg.data, manifest=str(manifest)))  # the saved config works from anywhere
    skipped = SkipReport()
    splits, labels = split_clips(read_manifest(manifest), cfg, skipped)
    task = create_task(cfg.task.name, labels, label_smoothing=cfg.task.label_smoothing)
    model = create_model(cfg.model.name, len(labels), frontend=cfg.model.frontend, **cfg.model.args)
    sr = model.sample_rate
    n_fft = model.frontend_config.win_length or model.frontend_config.n_fft
    train_store = AudioStore(splits.train, sr, cfg.data.strict, skipped, min_samples=n_fft)
    val_store = AudioStore(splits.val, sr, cfg.data.strict, skipped, min_samples=n_fft)
    if not train_store.clips:
        raise DataError(manifest, "no usable training clips left after skipping bad files")
    validate = bool(val_store.clips)
    if not validate and cfg.data.val_fraction > 0:
        raise DataError(manifest, "no usable validation clips (set data.val_fraction=0 to train without "
                                  "validation and keep the last epoch)")
    if not validate and cfg.trainer.patience:
        raise ConfigError("trainer.patience needs validation clips (data.val_fraction > 0 or a val split)")
    save_config(cfg, run / "config.yaml")
    fit_normalization(model, train_store.clips, train_store, cfg)
    win = int(round(cfg.data.clip_seconds * sr))
    hop_s = cfg.data.eval_hop_seconds or cfg.data.clip_seconds / 2
    hop = max(1, int(round(hop_s * sr)))
    a = cfg.augment
    wave_aug = WaveformAugment(a.shift, a.shift_seconds, a.gain_db, a.noise_prob, tuple(a.noise_snr_db),
                               tuple(a.noise_colours), sr)
    train_ds = CropDataset(train_store.clips, train_store, task.target, win, cfg.seed, wave_aug)
    val_ds = WindowDataset(val_store.clips, val_store, task.target, win, hop)
    dl = torch.utils.data.DataLoader
    sampler = balanced_sampler([c.label for c in train_store.clips], cfg.seed) if cfg.data.balanced else None
    train_dl = dl(train_ds, batch_size=cfg.data.batch_size, shuffle=sampler is None, sampler=sampler,
                  drop_last=len(train_ds) > cfg.data.batch_size,
                  num_workers=cfg.data.num_workers, persistent_workers=cfg.data.num_workers > 0)
    val_dl = dl(val_ds, batch_size=cfg.data.batch_size * 2, num_workers=cfg.data.num_workers)
    meta = build_meta(model, task, cfg.data.clip_seconds, hop_s, cfg.data.eval_pooling, to_dict(cfg))
    module = EarshotModule(model, task, cfg.optim, cfg.data, meta, n_val_clips=len(val_store.clips),
                           augment=cfg.augment, seed=cfg.seed)
    monitor = f"val/{cfg.trainer.monitor or task.monitor}"
    mode = "min" if monitor.endswith("loss") else "max"
    ckdir = run / "checkpoints"
    callbacks: list[Any] = [  # best by the monitored metric, and the latest epoch (for --resume)
        ModelCheckpoint(dirpath=ckdir, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)]
    if validate:
        callbacks.append(ModelCheckpoint(dirpath=ckdir, filename="best", monitor=monitor, mode=mode,
                                         enable_version_counter=False))
    if cfg.trainer.patience:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=cfg.trainer.patience))
    # a resumed run logs beside the first part instead of overwriting it
    log_version = "" if ckpt_path is None else f"resumed-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    trainer = L.Trainer(
        max_epochs=cfg.trainer.max_epochs, accelerator=cfg.trainer.accelerator, devices=cfg.trainer.devices,
        precision=cfg.trainer.precision, default_root_dir=run, callbacks=callbacks,
        logger=[CSVLogger(run, name="logs", version=log_version), TensorBoardLogger(run, name="tensorboard", version=log_version)],
        enable_progress_bar=cfg.trainer.progress_bar, num_sanity_val_steps=0, log_every_n_steps=10,
        limit_train_batches=cfg.trainer.limit_train_batches, enable_model_summary=False,
    )
    trainer.fit(module, train_dl, val_dl if validate else None, ckpt_path=ckpt_path)
    train_seconds = time.time() - t0
    best = ckdir / "best.ckpt"
    if not validate:  # no validation: the last epoch is the model
        shutil.copyfile(ckdir / "last.ckpt", best)
    ck = load_checkpoint(best)
    pred = Predictor(ck.model, ck.task, ck.meta, device="cpu" if cfg.trainer.accelerator == "cpu" else None)
    eval_split, eval_clips = ("test", splits.test) if splits.test else ("val", val_store.clips)
    if not eval_clips:
        raise DataError(manifest, "nothing to evaluate: no test split and no validation clips")
    report = pred.evaluate(eval_clips, skipped, predictions=run / "predictions.jsonl")
    report["split"] = eval_split
    report["train_seconds"] = round(train_seconds, 1)
    report["epochs"] = trainer.current_epoch
    report["best_checkpoint"] = str(best)
    report["selection"] = f"best {monitor}" if validate else "last epoch (no validation)"
    write_evaluation(report, run)
    skipped.write(run / "skipped.json")
    summary = {"run": str(run), "split": eval_split, "accuracy": report["accuracy"],
               "map@3": report.get("map@3"), "train_seconds": report["train_seconds"], "skipped": len(skipped)}
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    return run
