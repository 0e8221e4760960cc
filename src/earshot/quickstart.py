"""``earshot quickstart``: generate the built-in dataset, train, evaluate, all offline."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from earshot.config import RunConfig, load_config
from earshot.data.sources import prepare


def quickstart_config(workdir: str | Path = "earshot-quickstart", overrides: Sequence[str] = ()) -> RunConfig:
    """The quickstart's run config: a small CNN on the synthetic six-class dataset."""
    w = Path(workdir)
    base = [
        "name=quickstart", f"out_dir={w / 'runs'}", f"data.manifest={w / 'data' / 'manifest.jsonl'}",
        "data.clip_seconds=1.0", "data.batch_size=32", "model.name=cnn_small",
        "model.frontend.sample_rate=16000", "trainer.max_epochs=15", "augment.gain_db=6",
        "trainer.accelerator=cpu",
    ]
    return load_config(None, [*base, *overrides])


def run_quickstart(workdir: str | Path = "earshot-quickstart", n_per_class: int = 200,
                   overrides: Sequence[str] = ()) -> Path:
    """Make the dataset (once), train and evaluate; return the run folder."""
    from earshot.data.synth import make_synthetic_dataset
    from earshot.training.run import train

    w = Path(workdir)
    data = w / "data"
    manifest = data / "manifest.jsonl"
    if not manifest.exists():
        make_synthetic_dataset(data, n_per_class=n_per_class)
        prepare("folder", manifest, root=data)
    return train(quickstart_config(w, overrides))
