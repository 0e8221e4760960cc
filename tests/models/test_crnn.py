"""The CRNN's GRU precision option."""

import torch

from earshot.models.crnn import CRNN


def test_rnn_bf16_runs_the_gru_in_bf16_under_cpu_autocast_and_trains_float32_weights():
    torch.manual_seed(0)
    base = CRNN(32, channels=(8, 8, 8, 8, 8), rnn_hidden=8)
    fast = CRNN(32, channels=(8, 8, 8, 8, 8), rnn_hidden=8, rnn_bf16=True)
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
