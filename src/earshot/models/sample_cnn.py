"""SampleCNN on raw waveforms (seed 002: Kim, Lee & Nam, "Comparison and Analysis of SampleCNN
Architectures for Audio Classification", JSTSP 2019).

A 59049-sample segment (3^10, 2.7 s at 22050 Hz) goes through a strided conv of size 3 and nine
blocks of conv 3 + max-pool 3, with 128, 128, 256 x 6 and 512 channels. Blocks:

- ``basic``: conv-BN-ReLU, max-pool;
- ``se``: basic, then squeeze-and-excitation (global average, FC to ``C * amplifying_ratio``,
  ReLU, FC to C, sigmoid, rescale);
- ``res1`` / ``res2``: one, or two (dropout 0.2 between), conv-BN layers with a shortcut
  (a 1x1 conv-BN where the width changes), ReLU, max-pool;
- ``rese1`` / ``rese2``: the residual blocks with SE before the addition.

The backbone returns one embedding per 3^10 input samples, so a longer input gives several
frames. With ``multi=True`` (multi-level aggregation) the last three blocks are max-pooled to
that frame rate and concatenated (1024 channels). The seed's head (FC, BN, ReLU, dropout 0.5,
FC) is the registered default head over the max-pooled embedding.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from earshot.errors import ConfigError
from earshot.models.registry import register_model

Block = Literal["basic", "se", "res1", "res2", "rese1", "rese2"]
BLOCKS: tuple[str, ...] = ("basic", "se", "res1", "res2", "rese1", "rese2")
SEGMENT = 3**10  # 59049 samples
WIDTHS = (128, 128, 256, 256, 256, 256, 256, 256, 512)


class SqueezeExcite(nn.Module):
    """Channel gates from the time-averaged activations: ``(B, C, N)`` -> ``(B, C, N)``."""

    def __init__(self, channels: int, amplifying_ratio: float):
        super().__init__()
        hidden = max(1, int(round(channels * amplifying_ratio)))
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(-1)).unsqueeze(-1)


def _conv_bn(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, kernel, padding=kernel // 2), nn.BatchNorm1d(cout))


class SampleBlock(nn.Module):
    """One SampleCNN block: ``(B, Cin, N)`` -> ``(B, Cout, N // 3)``."""

    def __init__(self, cin: int, cout: int, block: str, amplifying_ratio: float):
        super().__init__()
        self.residual = block.startswith("res")
        se = block in ("se", "rese1", "rese2")
        if self.residual:
            n_convs = int(block[-1])
            layers: list[nn.Module] = [_conv_bn(cin, cout)]
            if n_convs == 2:
                layers += [nn.ReLU(), nn.Dropout(0.2), _conv_bn(cout, cout)]
            self.body = nn.Sequential(*layers)
            self.shortcut = _conv_bn(cin, cout, 1) if cin != cout else nn.Identity()
            self.se = SqueezeExcite(cout, amplifying_ratio) if se else nn.Identity()
        else:
            self.body = nn.Sequential(_conv_bn(cin, cout), nn.ReLU())
            self.se = SqueezeExcite(cout, amplifying_ratio) if se else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:  # SE before the addition
            return F.max_pool1d(F.relu(self.se(self.body(x)) + self.shortcut(x)), 3)
        return self.se(F.max_pool1d(self.body(x), 3))  # SE after pooling, as in the seed


class SampleCNN(nn.Module):
    """Waveform ``(B, N)`` -> frame embeddings ``(B, N // 3^10, D)``, D = 512 (1024 with ``multi``)."""

    def __init__(self, block: str = "se", amplifying_ratio: float = 16.0, multi: bool = False):
        super().__init__()
        if block not in BLOCKS:
            raise ConfigError(f"model.args.block: {block!r} is not one of {list(BLOCKS)}")
        self.stem = nn.Sequential(nn.Conv1d(1, WIDTHS[0], 3, stride=3), nn.BatchNorm1d(WIDTHS[0]), nn.ReLU())
        chans = [WIDTHS[0], *WIDTHS]
        self.blocks = nn.ModuleList(SampleBlock(a, b, block, amplifying_ratio) for a, b in zip(chans[:-1], chans[1:]))
        self.multi = multi
        self.dim = sum(WIDTHS[-3:]) if multi else WIDTHS[-1]
        self.time_stride = self.min_frames = SEGMENT
        for m in self.modules():  # the seed's initialisation: He-uniform convs, Glorot-uniform dense layers
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.stem(wave.unsqueeze(1))  # (B, 128, N / 3)
        outs = []
        for blk in self.blocks:
            x = blk(x)
            outs.append(x)
        if self.multi:  # pool the last three blocks to the last block's frame rate and concatenate
            n = x.shape[-1]
            x = torch.cat([F.adaptive_max_pool1d(o[..., : n * 3 ** (2 - i)], n) for i, o in enumerate(outs[-3:])], 1)
        return x.transpose(1, 2)  # (B, T', D)


FRONTEND = dict(sample_rate=22050)
HEAD = dict(pool="max", hidden=-1, hidden_norm=True, dropout=0.5)  # hidden=-1: as wide as the embedding


def _register(block: str) -> None:
    def build(n_features: int = 1, amplifying_ratio: float = 16.0, multi: bool = False) -> nn.Module:
        return SampleCNN(block, amplifying_ratio, multi)

    build.__doc__ = f"SampleCNN with {block} blocks on 59049-sample waveform segments (seed 002)."
    register_model(input="waveform", frontend=FRONTEND, head=HEAD, input_samples=SEGMENT,
                   name=f"samplecnn_{block}")(build)


for _b in BLOCKS:
    _register(_b)


@register_model(input="waveform", frontend=FRONTEND, head=HEAD, input_samples=SEGMENT)
def samplecnn(n_features: int = 1, block: str = "se", amplifying_ratio: float = 16.0, multi: bool = False) -> nn.Module:
    """SampleCNN on 59049-sample waveform segments; ``block``, ``amplifying_ratio``, ``multi`` as in seed 002."""
    return SampleCNN(block, amplifying_ratio, multi)
