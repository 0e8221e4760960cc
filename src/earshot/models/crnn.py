"""CRNN for sound event detection: a CNN over log-mel, then a bidirectional GRU over time.

The design of the DCASE 2020-2023 Task 4 baselines (Turpault et al.), sized for a CPU: conv
blocks that pool time only twice (frames every 4 input hops), frequency pooled away, and a
two-layer bidirectional GRU whose outputs are the frame embeddings. With the default front-end
(16 kHz, hop 256) a frame is 64 ms.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.func import functional_call

from earshot.models.cnn import SED_FRONTEND
from earshot.models.gru import bigru_train
from earshot.models.registry import register_model


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with a 15-bit uniform mask: on a CPU twice as fast as ``F.dropout`` forward and
    backward, whose Bernoulli draws were a tenth of a CRNN training step (keep probability exact to 3e-5).
    Elsewhere, or with p = 0 or outside training, ``F.dropout``."""
    if not training or p == 0.0 or x.device.type != "cpu":
        return F.dropout(x, p, training)
    keep = torch.empty_like(x, dtype=torch.int16).random_() >= round(p * 32768)  # random_() is uniform on [0, 2**15)
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


class ConvGLU(nn.Module):
    """3x3 conv + BN + gated linear unit, then pooling by (time_pool, freq_pool) and dropout."""

    def __init__(self, cin: int, cout: int, pool: tuple[int, int], dropout: float):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * cout)
        self.pool = nn.AvgPool2d(pool)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.bn.track_running_stats:
            a, g = self._halves(x)
        else:  # one conv + BN, as fold_batchnorm and the ONNX export expect
            a, g = self.bn(self.conv(x)).chunk(2, dim=1)
        return fast_dropout(self.pool(a * g.sigmoid()), self.drop.p, self.training)

    def _halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: the value and gate halves as two convs, each with its half of the BN (the same
        parameters, statistics and outputs as the one conv). Each half is then dense; halves of one
        channels_last tensor are strided, and the GLU and BN over them ran at half speed: 1.3x for the
        first block's step on a 2-core Xeon (benchmarks/RESULTS.md, 2026-12-06)."""
        bn, conv = self.bn, self.conv
        c = conv.out_channels // 2
        bn.num_batches_tracked.add_(1)
        momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        out = []
        for s in (slice(0, c), slice(c, 2 * c)):  # the running statistics are updated through the views
            h = F.conv2d(x, conv.weight[s], None, conv.stride, conv.padding, conv.dilation, conv.groups)
            out.append(F.batch_norm(h, bn.running_mean[s], bn.running_var[s], bn.weight[s], bn.bias[s],
                                    True, momentum, bn.eps))
        return out[0], out[1]


class CRNN(nn.Module):
    """``(B, T, F)`` log-mel -> ``(B, T / prod(time_pools), 2 * rnn_hidden)`` frame embeddings."""

    def __init__(self, n_features: int = 64, channels: Sequence[int] = (16, 32, 64, 128, 128),
                 time_pools: Sequence[int] = (2, 2, 1, 1, 1), rnn_hidden: int = 64, rnn_layers: int = 2,
                 dropout: float = 0.2, rnn_bf16: bool = True, rnn_fused: bool = True):
        super().__init__()
        # Under bf16 autocast on a CPU the GRU runs in bf16 too, as cuDNN's does under CUDA autocast;
        # autocast alone would leave it float32. On the office scenes that was worth 3 points of event F1
        # (two seeds), and the same training then scored on the CPU what it scored on an H100
        # (benchmarks/RESULTS.md, 2026-11-23). False keeps a CPU's GRU in float32.
        self.rnn_bf16 = rnn_bf16
        # Training on a CPU runs the GRU through earshot.models.gru.bigru_train: the same parameters and
        # maths as nn.GRU, both directions a step at once and a hand-written backward pass. False keeps
        # nn.GRU there too; inference and export always use nn.GRU.
        self.rnn_fused = rnn_fused
        if len(time_pools) != len(channels):
            raise ValueError(f"time_pools has {len(time_pools)} entries for {len(channels)} conv blocks")
        chans = [1, *channels]
        self.bn0 = nn.BatchNorm1d(n_features)
        self.cnn = nn.Sequential(*[ConvGLU(a, b, (tp, 2), dropout) for a, b, tp in zip(chans[:-1], chans[1:], time_pools)])
        self.rnn = nn.GRU(chans[-1], rnn_hidden, rnn_layers, batch_first=True, bidirectional=True,
                          dropout=dropout if rnn_layers > 1 else 0.0)
        self.dim = 2 * rnn_hidden
        stride = 1
        for tp in time_pools:
            stride *= tp
        self.time_stride = self.min_frames = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn0(x.transpose(1, 2)).transpose(1, 2)  # per-band normalisation of (B, T, F)
        h = self.cnn(x.unsqueeze(1))  # (B, C, T', F')
        h = h.mean(3).transpose(1, 2)  # (B, T', C)
        bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        if self.rnn_fused and self.training and torch.is_grad_enabled() and h.device.type == "cpu":
            p = self.rnn.dropout
            return bigru_train(self.rnn, h.float(), torch.bfloat16 if self.rnn_bf16 and bf16 else torch.float32,
                               dropout=lambda t: fast_dropout(t, p, True))
        if self.rnn_bf16 and h.device.type == "cpu" and bf16:
            # autocast leaves a CPU GRU in float32; bf16 copies of the weights keep float32 masters
            weights = {k: v.to(torch.bfloat16) for k, v in self.rnn.named_parameters()}
            out, _ = functional_call(self.rnn, weights, (h.to(torch.bfloat16),))
            return out
        out, _ = self.rnn(h.float() if h.dtype == torch.bfloat16 else h)
        return out  # (B, T', 2 * rnn_hidden)


@register_model(input="logmel", frontend=SED_FRONTEND, head=dict(type="frame", pool="attention", dropout=0.0))
def crnn(n_features: int = 64, **kw) -> nn.Module:
    """CNN (5 GLU blocks, 16-128 channels) + 2-layer BiGRU (64 per direction); frames every 64 ms."""
    return CRNN(n_features, **kw)
