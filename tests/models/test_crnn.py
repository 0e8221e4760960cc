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


def test_training_runs_each_glu_half_as_its_own_conv_and_bn_with_the_same_outputs_and_statistics():
    from earshot.models.crnn import ConvGLU

    torch.manual_seed(0)
    block = ConvGLU(3, 4, (2, 2), dropout=0.0).train()
    x = torch.randn(5, 3, 12, 8)
    ref_bn = torch.nn.BatchNorm2d(8).train()
    ref_bn.load_state_dict(block.bn.state_dict())
    a, g = ref_bn(block.conv(x)).chunk(2, dim=1)
    ref = torch.nn.functional.avg_pool2d(a * g.sigmoid(), (2, 2))
    out = block(x)
    assert torch.allclose(out, ref, atol=1e-6)
    for name in ("running_mean", "running_var", "num_batches_tracked"):  # updated through the halves' views
        assert torch.allclose(getattr(block.bn, name).float(), getattr(ref_bn, name).float()), name
    out.square().sum().backward()
    assert block.conv.weight.grad is not None and block.bn.weight.grad.abs().sum() > 0
    block.eval()  # inference takes the one-conv path that fold_batchnorm and the ONNX export see
    ref_bn.eval()
    with torch.no_grad():
        a, g = ref_bn(block.conv(x)).chunk(2, dim=1)
        assert torch.allclose(block(x), torch.nn.functional.avg_pool2d(a * g.sigmoid(), (2, 2)), atol=1e-6)


def test_fast_dropout_keeps_the_configured_fraction_scales_the_rest_and_follows_the_seed():
    from earshot.models.crnn import fast_dropout

    x = torch.ones(400, 1000)
    torch.manual_seed(1)
    y = fast_dropout(x, 0.2, True)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.8) < 0.003
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1.25))
    assert abs(y.mean().item() - 1.0) < 0.005  # inverted dropout keeps the expectation
    torch.manual_seed(1)
    assert torch.equal(fast_dropout(x, 0.2, True), y)
    assert torch.equal(fast_dropout(x, 0.2, False), x) and torch.equal(fast_dropout(x, 0.0, True), x)
    xb = torch.randn(4, 3, 5, 6, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    yb = fast_dropout(xb, 0.5, True)
    assert yb.dtype == torch.bfloat16 and yb.is_contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    fast_dropout(x, 0.2, True).sum().backward()
    assert set(x.grad.unique().tolist()) <= {0.0, 1.25}


def test_the_training_gru_has_nn_grus_outputs_and_gradients():
    from earshot.models.gru import bigru_train

    torch.manual_seed(0)
    gru = torch.nn.GRU(5, 4, 2, batch_first=True, bidirectional=True).double()
    x = torch.randn(3, 7, 5, dtype=torch.float64, requires_grad=True)
    ref, _ = gru(x)
    w = torch.randn_like(ref)
    params = [x, *gru.parameters()]
    ref_grads = torch.autograd.grad((ref * w).sum(), params)
    out = bigru_train(gru, x, torch.float64)
    grads = torch.autograd.grad((out * w).sum(), params)
    assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-12)
    for a, b in zip(ref_grads, grads):
        assert torch.allclose(a, b, atol=1e-12)
    # products in bf16: the same network up to bf16 rounding
    g32 = torch.nn.GRU(16, 16, 2, batch_first=True, bidirectional=True)
    x32 = torch.randn(4, 30, 16, requires_grad=True)
    ref, _ = g32(x32)
    ref_grad = torch.autograd.grad(ref.square().sum(), g32.weight_hh_l0)[0]
    out = bigru_train(g32, x32, torch.bfloat16)
    assert out.dtype == torch.float32 and (out - ref).abs().max() < 0.02
    grad = torch.autograd.grad(out.square().sum(), g32.weight_hh_l0)[0]
    assert (grad - ref_grad).norm() / ref_grad.norm() < 0.02


def test_crnn_training_on_a_cpu_takes_the_fused_gru_with_dropout_between_layers():
    torch.manual_seed(0)
    fused = CRNN(32, channels=(8, 8, 8, 8, 8), rnn_hidden=8, dropout=0.0)
    plain = CRNN(32, channels=(8, 8, 8, 8, 8), rnn_hidden=8, dropout=0.0, rnn_fused=False)
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(2, 40, 32)
    fused.train(), plain.train()
    out, ref = fused(x), plain(x)
    assert out.grad_fn is not None and torch.allclose(out, ref, atol=1e-5)
    calls = []
    import earshot.models.crnn as crnn_module

    real = crnn_module.fast_dropout
    crnn_module.fast_dropout = lambda t, p, training: calls.append((t.shape, p)) or real(t, p, training)
    try:
        CRNN(32, channels=(8, 8, 8, 8, 8), rnn_hidden=8, dropout=0.3).train()(x)
    finally:
        crnn_module.fast_dropout = real
    assert (torch.Size([10, 2, 16]), 0.3) in calls  # between the GRU's layers, time-major (T', B, 2H)
    with torch.no_grad():  # outside training nn.GRU runs, as export and inference see it
        fused.eval(), plain.eval()
        assert torch.equal(fused(x), plain(x))
