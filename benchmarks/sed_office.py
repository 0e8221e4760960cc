"""Sound event detection on real office sounds: the DCASE 2016 Task 2 protocol, rebuilt from its parts.

    python benchmarks/sed_office.py [--variants crnn_strong,cnn9_strong,crnn_weak,crnn_mean_teacher]
                                    [--n-train 2000] [--robustness] [key=value ...]

Data (built once into data/office_sed/, seed 0, with `earshot.data.soundscapes.synthesize`):

- The 220 isolated events of ../shared/data/dcase2016-task2/train/sound, split **by recording**
  (each file is one recording): 14 per class for training, 6 per class for test.
- Backgrounds: the real recordings of ../shared/data/backgrounds (the .mp3 twin left out), each cut
  in time: first 70 % for training scenes, last 30 % for test scenes.
- Event-to-background ratios -6, 0 and +6 dB, monophonic and polyphonic scenes alternating, and
  5.5-27.5 events per minute: the density of the 18 real dev annotations (11-55 events in 2 min).
- ``--n-train`` 10 s training scenes, 60 validation scenes (training events), 18 test scenes of
  2 minutes (test events; backgrounds looped with a crossfade, their test parts being short).
- ``--val-recordings K`` (into data/office_sed_N_valK/): K of the 14 training recordings per class
  make the validation scenes instead, so decoding is tuned on recordings the model never heard;
  training scenes use the other 14 - K. The test scenes are the same.

Variants (recipes/office_sed.yaml plus overrides): ``crnn_strong`` and ``cnn9_strong`` train on the
strong labels; ``crnn_weak`` on the same scenes with only their clip tags; ``crnn_mean_teacher``
on a third strong, a third weak and a third unlabelled, with the mean teacher; ``crnn_dynamic``
mixes ``--n-train`` new training scenes every epoch (``data.scenes``) from the same training events
and backgrounds, in place of the fixed scenes.

``--robustness`` also trains a classifier on the isolated training events with and without
``augment.backgrounds`` and tests both on the test scenes' events cut out of their mixtures.

Targets (issue 7), on the test scenes, from scratch on 2 CPU cores in <= 45 minutes wall:
event-based F1 (macro) >= 0.70 and segment-based F1 (micro) >= 0.85.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from earshot.audio.io import load_audio
from earshot.config import load_config, parse_overrides
from earshot.data.manifest import Clip, read_manifest, write_manifest
from earshot.data.mixing import split_recordings
from earshot.data.soundscapes import SceneSpec, synthesize
from earshot.training.run import train

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RECIPE = REPO / "recipes" / "office_sed.yaml"
BACKGROUNDS = ("street-scene-1.wav", "acoustic-scene-street.wav", "noise-0145.wav")
SR = 16000
VARIANTS = {
    "crnn_strong": ["model.name=crnn", "task.train_on=[strong]"],
    "cnn9_strong": ["model.name=cnn9", "task.train_on=[strong]"],
    "crnn_weak": ["model.name=crnn", "task.train_on=[weak]"],
    "crnn_mean_teacher": ["model.name=crnn", "task.train_on=[weak,strong,unlabelled]", "task.mean_teacher=true"],
    # no fixed training scenes: n_train new ones mixed every epoch from the same training events and backgrounds
    "crnn_dynamic": ["model.name=crnn", "task.train_on=[strong]", "data.scenes.ebr_db=[-6,0,6]",
                     "data.scenes.events_per_minute=[5.5,27.5]", "data.scenes.loop_backgrounds=true"],
}


def _folders(work: Path, val_recordings: int = 0) -> dict[str, Path]:
    """Class folders of events (train/test, split by recording) and background parts (by time);
    with ``val_recordings``, that many training recordings per class become validation events."""
    label = re.compile(r"^([A-Za-z]+)")
    split = split_recordings(sorted((SHARED / "dcase2016-task2/train/sound").glob("*.wav")), label,
                             test_fraction=0.3, seed=0)
    if val_recordings:
        split["val"] = {}
        for cls, files in split["train"].items():
            split["train"][cls], split["val"][cls] = files[:-val_recordings], files[-val_recordings:]
    out = {}
    for part, by_class in split.items():
        for cls, files in by_class.items():
            d = work / f"events_{part}" / cls
            d.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copyfile(f, d / f.name)
        out[f"events_{part}"] = work / f"events_{part}"
        if part == "val":
            continue  # validation scenes use the training parts of the backgrounds
        bg = work / f"backgrounds_{part}"
        bg.mkdir(parents=True, exist_ok=True)
        for name in BACKGROUNDS:
            x = load_audio(SHARED / "backgrounds" / name, SR)[0]
            cut = int(0.7 * len(x))
            sf.write(bg / name, x[:cut] if part == "train" else x[cut:], SR)
        out[f"backgrounds_{part}"] = bg
    counts = {p: {c: len(fs) for c, fs in d.items()} for p, d in split.items()}
    (work / "split.json").write_text(json.dumps({"counts": counts, "files": {p: {c: [f.name for f in fs] for c, fs in
                                                 d.items()} for p, d in split.items()}}, indent=1))
    return out


def build(work: Path, n_train: int, val_recordings: int = 0) -> Path:
    manifest = work / "manifest.jsonl"
    if manifest.exists():
        return manifest
    t = time.time()
    f = _folders(work, val_recordings)
    common = dict(sample_rate=SR, ebr_db=(-6.0, 0.0, 6.0), events_per_minute=(5.5, 27.5), polyphony="both",
                  loop_backgrounds=True)
    clips: list[Clip] = []
    for split, n, seconds, events, seed in (("train", n_train, 10.0, "events_train", 1),
                                           ("val", 60, 10.0, "events_val" if val_recordings else "events_train", 2),
                                           ("test", 18, 120.0, "events_test", 3)):
        spec = SceneSpec(n_clips=n, clip_seconds=seconds, prefix=split, split=split, seed=seed, **common)
        bg = f["backgrounds_train" if split != "test" else "backgrounds_test"]
        clips += read_manifest(synthesize(f[events], bg, work / split, spec))
    write_manifest(manifest, clips)
    print(f"built {work} in {time.time() - t:.0f} s: {sum(c.split == 'train' for c in clips)} train, "
          f"{sum(c.split == 'val' for c in clips)} val, {sum(c.split == 'test' for c in clips)} test scenes", flush=True)
    return manifest


def relabel(manifest: Path, kind: str) -> Path:
    """The same scenes with the training clips' annotation changed: ``weak`` (tags only) or
    ``mixed`` (a third each strong, weak and unlabelled), or ``heldout`` (no training clips: they are
    mixed on the fly)."""
    out = manifest.with_name(f"manifest_{kind}.jsonl")
    if out.exists():
        return out
    clips = read_manifest(manifest)
    new = []
    for i, c in enumerate(clips):
        if c.split == "train" and kind == "heldout":
            continue
        if c.split == "train" and (kind == "weak" or i % 3 == 1):
            c = replace(c, events=[], annotation="weak")
        elif c.split == "train" and kind == "mixed" and i % 3 == 2:
            c = replace(c, events=[], labels=[], annotation="unlabelled")
        new.append(c)
    return write_manifest(out, new)


def cut_events(manifest: Path, work: Path) -> Path:
    """Classification clips: every event of the test scenes cut out of its mixture (background and
    overlapping events included)."""
    out = work / "cut_events.jsonl"
    if out.exists():
        return out
    folder = work / "cut_events"
    folder.mkdir(exist_ok=True)
    clips = []
    for c in read_manifest(manifest):
        if c.split != "test":
            continue
        x, sr = sf.read(c.path, dtype="float32")
        for j, e in enumerate(c.events):
            seg = x[int(e.onset * sr) : int(e.offset * sr)]
            p = folder / f"{c.id}_{j:03d}_{e.label}.wav"
            sf.write(p, seg, sr)
            clips.append(Clip(id=p.stem, path=str(p), duration=len(seg) / sr, sample_rate=sr, channels=1,
                              labels=[e.label], split="test"))
    return write_manifest(out, clips)


def robustness(work: Path, manifest: Path, out_dir: str) -> None:
    """Classifier on isolated training events, with and without background mixing, tested on events
    cut from the test scenes."""
    from earshot.inference.evaluation import evaluate_checkpoint

    events = []
    for d in sorted((work / "events_train").iterdir()):
        for f in sorted(d.glob("*.wav")):
            info = sf.info(f)
            events.append(Clip(id=f.stem, path=str(f), duration=info.duration, sample_rate=info.samplerate,
                               channels=1, labels=[d.name], split="train"))
    iso = write_manifest(work / "isolated_train.jsonl", events)
    test = cut_events(manifest, work)
    print("| classifier training | accuracy on events cut from the test scenes | train wall |")
    print("|---|---|---|")
    for name, extra in (("isolated events", []),
                        ("isolated events + augment.backgrounds (SNR -6..+12 dB)",
                         [f"augment.backgrounds={work / 'backgrounds_train'}", "augment.background_snr_db=[-6,12]"])):
        cfg = load_config(REPO / "recipes" / "dcase2016_events.yaml",
                          [f"data.manifest={iso}", "data.val_fraction=0.15",
                           f"out_dir={out_dir}", "trainer.progress_bar=false", *extra])
        t = time.time()
        run = train(cfg)
        wall = time.time() - t
        rep = evaluate_checkpoint(run / "checkpoints/best.ckpt", test, None, run / "eval-cut-events")
        print(f"| {name} | {rep['accuracy']:.4f} ({rep['n_clips']} events) | {wall:.0f} s |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="crnn_strong")
    ap.add_argument("--n-train", type=int, default=2000, help="10 s training scenes")
    ap.add_argument("--out-dir", default="/tmp/earshot-bench")
    ap.add_argument("--robustness", action="store_true")
    ap.add_argument("--val-recordings", type=int, default=0,
                    help="hold out this many of the 14 training recordings per class for the validation scenes "
                         "(decoding is then tuned on recordings the model never trained on)")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    os.chdir(REPO)
    work = REPO / "data" / (f"office_sed_{a.n_train}" + (f"_val{a.val_recordings}" if a.val_recordings else ""))
    t0 = time.time()
    manifest = build(work, a.n_train, a.val_recordings)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print("| variant | event F1 macro | event F1 micro | event ER | segment F1 micro | segment ER | PSDS1 | PSDS2 | "
          "tagging mAP | epochs | wall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    recipe_model = load_config(RECIPE).model.name
    for name in filter(None, a.variants.split(",")):
        m_path = {"crnn_weak": lambda: relabel(manifest, "weak"), "crnn_mean_teacher": lambda: relabel(manifest, "mixed"),
                  "crnn_dynamic": lambda: relabel(manifest, "heldout")}.get(name, lambda: manifest)()
        scenes = ([f"data.scenes.foreground={work / 'events_train'}", f"data.scenes.background={work / 'backgrounds_train'}",
                   f"data.scenes.per_epoch={a.n_train}"] if name == "crnn_dynamic" else [])
        cfg = load_config(RECIPE,
                          [f"data.manifest={m_path}", f"out_dir={a.out_dir}", "trainer.progress_bar=false",
                           *VARIANTS[name], *scenes, *a.overrides])
        if cfg.model.name != recipe_model:  # the recipe's model.args (GRU width, time pooling) are the CRNN's
            cfg.model.args = parse_overrides(a.overrides).get("model", {}).get("args", {})
        t = time.time()
        run = train(cfg)
        wall = time.time() - t
        m = json.loads((run / "metrics.json").read_text())

        def f(k: str) -> str:
            return "-" if m.get(k) is None else f"{m[k]:.4f}"

        print(f"| {name} | {f('event_f1_macro')} | {f('event_f1_micro')} | {f('event_er')} | {f('segment_f1_micro')} | "
              f"{f('segment_er')} | {f('psds1')} | {f('psds2')} | {f('mAP')} | {m['epochs']} | {wall:.0f} s |",
              flush=True)
        print(f"  run: {run}", flush=True)
    if a.robustness:
        robustness(work, manifest, a.out_dir)
    print(f"total wall (data build included): {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
