"""Efficient 2-D log-mel CNNs: a small residual network and a depthwise-separable
(MobileNet-style) network. Both keep a time axis for frame logits."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from earshot.models.registry import register_model

FRONTEND = dict(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=20.0)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection; ``stride`` 2 halves T and F."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class SeparableBlock(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise (stride), 1x1 project (MobileNetV2)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4):
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class Conv2dNet(nn.Module):
    """Stem conv, stages of ``block`` (first of each stage strided) -> frame embeddings ``(B, T', D)``."""

    def __init__(self, n_features: int, block: type, widths: Sequence[int], depths: Sequence[int], stem: int):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(n_features)
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU())
        layers, cin = [], stem
        for w, d in zip(widths, depths):
            for i in range(d):
                layers.append(block(cin, w, 2 if i == 0 else 1))
                cin = w
        self.stages = nn.Sequential(*layers)
        self.dim = cin
        self.time_stride = self.min_frames = 2 ** len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn0(x.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)  # per-band BN
        x = self.stages(self.stem(x.unsqueeze(1)))  # (B, D, T', F')
        return x.mean(3).transpose(1, 2)


HEAD = dict(pool="max+mean", dropout=0.2)


@register_model(input="logmel", frontend=FRONTEND, head=HEAD)
def resnet_small(n_features: int = 64) -> nn.Module:
    """Small ResNet: 4 stages of 2 basic blocks, 16-128 channels."""
    return Conv2dNet(n_features, BasicBlock, (16, 32, 64, 128), (2, 2, 2, 2), 16)


@register_model(input="logmel", frontend=FRONTEND, head=HEAD)
def mobilenet_small(n_features: int = 64) -> nn.Module:
    """Depthwise-separable inverted-residual CNN (MobileNetV2-style), 16-128 channels."""
    return Conv2dNet(n_features, SeparableBlock, (24, 48, 96, 128), (1, 2, 2, 1), 16)
