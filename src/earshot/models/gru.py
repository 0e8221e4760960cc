"""A bidirectional GRU for training on a CPU: the two directions step together, and the backward pass
is written out by hand.

``torch.nn.GRU`` on a CPU runs each direction's time steps as separate small operations, and autograd
records every one of them: for a 2-layer bidirectional GRU over 156 frames that is about 6,000 graph
nodes a batch, and the backward pass does two small matrix products a step (one for the hidden state,
one for the recurrent weights). Here both directions advance in one batched product a step, the
backward pass keeps only the hidden-state product inside its loop, and the recurrent weights'
gradient is one large product over all steps at the end, as cuDNN does. The parameters are those of
the ``nn.GRU`` it is given, so checkpoints, inference and ONNX export still use ``nn.GRU``; the maths
is the same (PyTorch's gate order r, z, n, with ``b_hn`` inside the reset gate's product).

Under bf16 the matrix products run in bf16 while the gates and the hidden state stay in float32.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


class _Recurrence(torch.autograd.Function):
    """``gi`` (D, T, B, 3H): input projections (with ``b_ih`` and the r, z parts of ``b_hh``), each
    direction already in its own time order; ``w_hh`` (D, 3H, H); ``b_hn`` (D, H). Returns every
    hidden state (D, T, B, H)."""

    @staticmethod
    def forward(ctx, gi: torch.Tensor, w_hh: torch.Tensor, b_hn: torch.Tensor, mm_dtype: torch.dtype) -> torch.Tensor:
        d, t_len, b, h3 = gi.shape
        hid = h3 // 3
        w = w_hh.to(mm_dtype)
        w_t = w.transpose(1, 2)  # (D, H, 3H)
        bn = b_hn.unsqueeze(1)
        h = gi.new_zeros(d, b, hid)
        hs, rzs, ns, ghns = [h], [], [], []
        for t in range(t_len):
            g = gi[:, t]
            gh = torch.bmm(h.to(mm_dtype), w_t)
            rz = torch.sigmoid(g[..., : 2 * hid] + gh[..., : 2 * hid])
            ghn = gh[..., 2 * hid :] + bn  # float32 once the bias (float32) is added
            n = torch.tanh(torch.addcmul(g[..., 2 * hid :], rz[..., :hid], ghn))
            h = torch.lerp(n, h, rz[..., hid:])  # (1 - z) n + z h
            hs.append(h)
            rzs.append(rz)
            ns.append(n)
            ghns.append(ghn)
        hs_all = torch.stack(hs, 1)  # (D, T + 1, B, H), hs_all[:, 0] = 0
        ctx.save_for_backward(w, hs_all, torch.stack(rzs, 1), torch.stack(ns, 1), torch.stack(ghns, 1))
        ctx.mm_dtype = mm_dtype
        return hs_all[:, 1:]

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor):
        w, hs_all, rz, n, ghn = ctx.saved_tensors
        mm_dtype = ctx.mm_dtype
        d, t_len, b, hid = n.shape
        # factors that do not depend on the incoming gradient, computed for all steps at once
        d_tanh = 1.0 - n * n
        d_sig = rz * (1.0 - rz)
        h_minus_n = hs_all[:, :-1] - n
        r, z = rz[..., :hid], rz[..., hid:]
        d_gi = grad_h.new_empty(d, t_len, b, 3 * hid)
        d_gh = grad_h.new_empty(d, t_len, b, 3 * hid)
        dh = grad_h.new_zeros(d, b, hid)
        for t in range(t_len - 1, -1, -1):
            dh = dh + grad_h[:, t]
            dhz = dh * z[:, t]
            da_n = (dh - dhz) * d_tanh[:, t]
            torch.mul(torch.cat((da_n * ghn[:, t], dh * h_minus_n[:, t]), -1), d_sig[:, t], out=d_gi[:, t, :, : 2 * hid])
            d_gi[:, t, :, 2 * hid :] = da_n
            d_gh[:, t, :, : 2 * hid] = d_gi[:, t, :, : 2 * hid]
            torch.mul(da_n, r[:, t], out=d_gh[:, t, :, 2 * hid :])
            dh = dhz + torch.bmm(d_gh[:, t].to(mm_dtype), w)
        flat = d_gh.reshape(d, t_len * b, 3 * hid)
        d_w = torch.bmm(flat.transpose(1, 2).to(mm_dtype), hs_all[:, :-1].reshape(d, t_len * b, hid).to(mm_dtype))
        d_bn = flat[..., 2 * hid :].sum(1)
        return d_gi, d_w.to(d_gi.dtype), d_bn, None


def bigru_train(gru: nn.GRU, x: torch.Tensor, mm_dtype: torch.dtype = torch.float32,
                dropout: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """``gru`` (bidirectional, batch_first) over ``x`` (B, T, In) -> (B, T, 2H) in the parameters' dtype, with
    gradients for ``gru``'s parameters and ``x``. ``dropout`` goes between layers, as ``gru.dropout``
    does in ``nn.GRU``; products run in ``mm_dtype``."""
    if not (gru.bidirectional and gru.batch_first and gru.bias):
        raise ValueError("bigru_train needs a bidirectional, batch_first GRU with biases")
    hid = gru.hidden_size
    zeros = gru.weight_hh_l0.new_zeros(hid)
    pdtype = zeros.dtype  # the gates' and hidden state's dtype: the parameters'
    h = x.transpose(0, 1)  # (T, B, In), time-major from here
    with torch.autocast(x.device.type, enabled=False):
        for layer in range(gru.num_layers):
            if layer and dropout is not None:
                h = dropout(h)
            p = [getattr(gru, f"{k}_l{layer}{s}") for s in ("", "_reverse")
                 for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            w_ih = torch.cat((p[0], p[4])).to(mm_dtype)  # (2 * 3H, In)
            b_ih = torch.cat((p[2] + torch.cat((p[3][: 2 * hid], zeros)), p[6] + torch.cat((p[7][: 2 * hid], zeros))))
            gi = (h.to(mm_dtype) @ w_ih.t()).to(pdtype) + b_ih  # (T, B, 6H)
            gi = gi.view(gi.shape[0], gi.shape[1], 2, 3 * hid).permute(2, 0, 1, 3)  # (2, T, B, 3H)
            gi = torch.stack((gi[0], gi[1].flip(0)))  # the reverse direction runs in its own time order
            w_hh = torch.stack((p[1], p[5]))
            b_hn = torch.stack((p[3][2 * hid :], p[7][2 * hid :]))
            out = _Recurrence.apply(gi, w_hh, b_hn, mm_dtype)  # (2, T, B, H)
            h = torch.cat((out[0], out[1].flip(0)), -1)  # (T, B, 2H)
    return h.transpose(0, 1)


__all__ = ["bigru_train"]
