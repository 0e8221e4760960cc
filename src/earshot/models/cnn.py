"""VGG-style log-mel CNNs (the DCASE 2018 Task 2 baseline of seed 000, and smaller widths)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from earshot.models.registry import register_model


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then 2x2 pooling: ``(B, Cin, T, F)`` -> ``(B, Cout, T/2, F/2)``."""

    def __init__(self, cin: int, cout: int, pool: str = "avg"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pool = nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.pool(x)


class VggCnn(nn.Module):
    """Conv blocks over log-mel ``(B, T, F)`` -> frame embeddings ``(B, T / 2^k, D)`` (mean over frequency)."""

    def __init__(self, n_features: int = 64, channels: Sequence[int] = (64, 128, 256, 512), pool: str = "avg"):
        super().__init__()
        chans = [1, *channels]
        self.bn0 = nn.BatchNorm2d(n_features)
        self.blocks = nn.Sequential(*[ConvBlock(a, b, pool) for a, b in zip(chans[:-1], chans[1:])])
        self.dim = chans[-1]
        self.time_stride = self.min_frames = 2 ** len(channels)

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
