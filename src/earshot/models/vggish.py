"""VGGish (Hershey et al. 2017), the AudioSet embedding network of seed 003, written so that the
torchvggish port's state dict (``vggish-10086976.pth``: ``features.*`` and ``embeddings.*``) loads.

Its front-end is our :class:`LogMel` with VGGish's settings: 16 kHz, 25 ms windows every 10 ms in a
512-point FFT, frames not centred, the magnitude spectrum, 64 HTK mel bands over 125-7500 Hz and
``log(mel + 0.01)``. The backbone cuts the log-mel into non-overlapping 96-frame patches (0.96 s),
embeds each to 128 values, and returns them as frames ``(B, P, 128)``, so a head pools patches
over time: by default the attention pooling of seed 003.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from earshot.errors import ConfigError
from earshot.models.pretrained import Converted
from earshot.models.registry import register_model

VGGISH_FRONTEND: dict[str, Any] = {"sample_rate": 16000, "n_fft": 512, "win_length": 400, "hop_length": 160,
                                   "n_mels": 64, "fmin": 125.0, "fmax": 7500.0, "center": False, "power": 1.0,
                                   "mel_scale": "htk", "log": "ln", "log_offset": 0.01}
PATCH_FRAMES = 96


class VGGish(nn.Module):
    """``(B, T, 64)`` log-mel -> ``(B, T // 96, 128)``: one embedding per 0.96 s patch."""

    def __init__(self, n_features: int = 64):
        super().__init__()
        if n_features != 64:
            raise ConfigError(f"vggish reads 64 mel bands, not {n_features} (its first dense layer is 512 x 4 x 6)")
        layers: list[nn.Module] = []
        c_in = 1
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):  # the layer indices of the original
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU()]
                c_in = int(v)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                                        nn.Linear(4096, 128), nn.ReLU())
        self.dim = 128
        self.time_stride = PATCH_FRAMES
        self.min_frames = PATCH_FRAMES
        for m in self.modules():  # He initialisation keeps activations alive through 9 ReLU layers from scratch
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:  # (B, T, F)
        b, t, f = feats.shape
        p = t // PATCH_FRAMES  # whole patches only, as VGGish frames its examples
        x = feats[:, : p * PATCH_FRAMES].reshape(b * p, 1, PATCH_FRAMES, f)
        x = self.features(x)  # (B*P, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).reshape(b * p, -1)  # time, frequency, channel: the original's order
        return self.embeddings(x).reshape(b, p, -1)  # (B, P, 128)


def convert_vggish(state: dict[str, torch.Tensor], model: Any) -> Converted:
    """The torchvggish state dict in earshot's names; its PCA post-processor is left out. The head is
    new: VGGish has none."""
    mapped, dropped = {}, {}
    for k, v in state.items():
        if k.startswith("pproc."):
            dropped[k] = "PCA whitening and 8-bit quantisation of AudioSet's release (earshot uses the raw embedding)"
        else:
            mapped["backbone." + k] = v
    return Converted(mapped, dropped, ("head.",))


@register_model(frontend=VGGISH_FRONTEND, head={"type": "frame", "pool": "attention"}, normalize=False,
                convert=convert_vggish)
def vggish(n_features: int) -> nn.Module:
    """VGGish (128-d embedding per 0.96 s patch, 72 M parameters) with attention pooling (seed 003)"""
    return VGGish(n_features)
