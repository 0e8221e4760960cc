"""The CRNN's GRU precision option."""

import torch

from earshot.models.crnn import CRNN


def test_the_gru_follows_cpu_autocast_to_bf16_by_default_and_trains_float32_weights():
    torch.manual_seed(0)
    base = CRNN(32, channels=(8, 8, 8, 8, 8), rnn_hidden=8, rnn_bf16=False)
    fast = CRNN(32, channels=(8, 8, 8, 8, 8), rnn_hidden=8)  # the default: the GRU follows autocast
    fast.load_state_dict(base.state_dict())
    base.eval(), fast.eval()
    x = torch.randn(2, 40, 32)
    with torch.no_grad():  # outside autocast the option changes nothing
        assert torch.equal(base(x), fast(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = base(x)
        out = fast(x)
    assert ref.dtype == torch.float32 and out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() < 0.05  # bf16 rounding, not a different network
    fast.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast(x).float().square().mean().backward()
    g = fast.rnn.weight_hh_l0.grad
    assert fast.rnn.weight_hh_l0.dtype == torch.float32 and g is not None and g.dtype == torch.float32
    assert g.abs().sum() > 0
