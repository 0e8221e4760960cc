"""Write the parameter names and shapes of the published PANNs and VGGish checkpoints, as built by
their public model definitions, to ``tests/models/data/published_layouts.json``.

    python tools/published_layouts.py PANNS_PYTORCH_DIR

``PANNS_PYTORCH_DIR`` is the ``pytorch/`` folder of a checkout of qiuqiangkong/audioset_tagging_cnn
(its ``models.py`` needs ``torchlibrosa``); VGGish comes from the ``torchvggish`` package (a dev
dependency). The tests build random state dicts from this file, save them the way the originals
are saved, and load them through ``create_model(..., pretrained=...)``: the key layout is checked
against the real definitions without shipping their code or downloading weights.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

from earshot.models.registry import create_model

OUT = Path(__file__).resolve().parents[1] / "tests" / "models" / "data" / "published_layouts.json"
PANNS = {"panns_cnn6": "Cnn6", "panns_cnn10": "Cnn10", "panns_cnn14": "Cnn14", "panns_mobilenetv1": "MobileNetV1",
         "panns_mobilenetv2": "MobileNetV2"}


def main() -> None:
    sys.path.insert(0, sys.argv[1])
    import models as panns  # the public definitions  # type: ignore[import-not-found]
    from torchvggish.torchvggish import VGG, make_layers  # type: ignore[import-untyped]

    layouts = {}
    for ours, theirs in PANNS.items():
        m = getattr(panns, theirs)(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50,
                                   fmax=14000, classes_num=527)
        layouts[ours] = {k: list(v.shape) for k, v in m.state_dict().items()}
        parity(ours, m, lambda sd: {"model": sd, "iteration": 0}, 32000, lambda out: out["clipwise_output"])
    vgg = VGG(make_layers(), postprocess=False)
    layouts["vggish"] = {k: list(v.shape) for k, v in vgg.state_dict().items()}
    OUT.write_text(json.dumps(layouts, indent=0, sort_keys=True) + "\n")
    print(f"wrote {OUT}: " + ", ".join(f"{k} {len(v)} tensors" for k, v in layouts.items()))
    parity_vggish(vgg)


def _randomise_norms(m: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)


@torch.no_grad()
def parity(name: str, theirs: torch.nn.Module, wrap, sr: int, output) -> None:
    """The same random weights in the original and in earshot (loaded through ``pretrained=``): the
    clip probabilities of one input must agree."""
    _randomise_norms(theirs)
    theirs.eval()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ckpt.pth"
        torch.save(wrap(theirs.state_dict()), path)
        ours = create_model(name, 527, pretrained=str(path)).eval()
    x = torch.randn(2, 3 * sr, generator=torch.Generator().manual_seed(1)) * 0.1
    a = output(theirs(x))
    b = torch.sigmoid(ours(x)["clip_logits"])
    print(f"{name}: max |p_original - p_earshot| = {float((a - b).abs().max()):.2e} over {a.numel()} probabilities")


@torch.no_grad()
def parity_vggish(vgg: torch.nn.Module) -> None:
    import numpy as np
    from torchvggish import vggish_input  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "vggish.pth"
        torch.save(vgg.state_dict(), path)
        ours = create_model("vggish", 10, pretrained=str(path)).eval()
    x = np.random.RandomState(1).randn(16000 * 3) * 0.1
    a = vgg.eval()(vggish_input.waveform_to_examples(x, 16000).detach())  # (3, 128)
    b = ours.embed(torch.from_numpy(x).float()[None])[0]
    print(f"vggish: max |embedding_original - embedding_earshot| = {float((a - b).abs().max()):.2e} "
          f"(embeddings up to {float(a.abs().max()):.2e})")


if __name__ == "__main__":
    main()
