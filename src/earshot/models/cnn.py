"""VGG-style log-mel CNNs: the DCASE 2018 Task 2 baseline of seed 000 and smaller widths, and the
9-layer CNN of seed 001 (DCASE 2019 Task 4) with less time pooling, for frame-level detection."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from earshot.models.registry import register_model


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then pooling by ``time_pool`` x 2: ``(B, Cin, T, F)`` -> ``(B, Cout, T/tp, F/2)``."""

    def __init__(self, cin: int, cout: int, pool: str = "avg", time_pool: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        size = (time_pool, 2)
        self.pool = nn.AvgPool2d(size) if pool == "avg" else nn.MaxPool2d(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.pool(x)


class VggCnn(nn.Module):
    """Conv blocks over log-mel ``(B, T, F)`` -> frame embeddings ``(B, T / 2^k, D)`` (mean over frequency)."""

    def __init__(self, n_features: int = 64, channels: Sequence[int] = (64, 128, 256, 512), pool: str = "avg",
                 time_pools: Sequence[int] | None = None):
        super().__init__()
        chans = [1, *channels]
        tps = list(time_pools) if time_pools is not None else [2] * len(channels)
        self.bn0 = nn.BatchNorm2d(n_features)
        self.blocks = nn.Sequential(*[ConvBlock(a, b, pool, tp) for a, b, tp in zip(chans[:-1], chans[1:], tps)])
        self.dim = chans[-1]
        self.time_stride = self.min_frames = int(np.prod(tps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn0(x.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)  # per-band BN
        x = self.blocks(x.unsqueeze(1))  # (B, D, T', F')
        return x.mean(dim=3).transpose(1, 2)  # (B, T', D)


HEAD = dict(pool="max", dropout=0.2)


@register_model(input="logmel", frontend=dict(sample_rate=32000, n_fft=2048, hop_length=1024, n_mels=64, fmin=50.0),
                head=HEAD)
def kong2018_cnn(n_features: int = 64, **kw) -> nn.Module:
    """VGG-like CNN of the DCASE 2018 Task 2 PyTorch baseline: 4 blocks of 64-512 channels."""
    return VggCnn(n_features, (64, 128, 256, 512), **kw)


@register_model(input="logmel", frontend=dict(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=20.0),
                head=HEAD)
def cnn_small(n_features: int = 64, **kw) -> nn.Module:
    """The same VGG design at a quarter of the width (16-128 channels): fast on a CPU."""
    return VggCnn(n_features, (16, 32, 64, 128), **kw)


@register_model(input="logmel", frontend=dict(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=20.0),
                head=HEAD)
def cnn_medium(n_features: int = 64, **kw) -> nn.Module:
    """The VGG design at half width (32-256 channels)."""
    return VggCnn(n_features, (32, 64, 128, 256), **kw)


SED_FRONTEND = dict(sample_rate=16000, n_fft=1024, hop_length=256, n_mels=64, fmin=20.0)


@register_model(input="logmel", frontend=SED_FRONTEND, head=dict(type="frame", pool="attention", dropout=0.2))
def cnn9(n_features: int = 64, channels: Sequence[int] = (64, 128, 256, 512), **kw) -> nn.Module:
    """Seed 001's 9-layer CNN (4 double-conv blocks + classifier) for detection: time pooled 4x (64 ms frames)."""
    return VggCnn(n_features, channels, time_pools=kw.pop("time_pools", (2, 2, 1, 1)), **kw)
