"""The fused C kernels of the CPU log-mel front-end against its torch ops, and the fallback."""

import logging
import os

import numpy as np
import pytest
import torch

from earshot.features import native
from earshot.features.frontends import LogMel, LogMelConfig


@pytest.fixture
def kernels(monkeypatch):
    monkeypatch.setenv("EARSHOT_NATIVE", "1")  # tested on every CPU, not only where they are the default
    native.load.cache_clear()
    lib = native.load()
    if lib is None:
        pytest.skip("the native log-mel kernels did not build here (no C compiler?): the torch path is tested alone")
    yield lib
    native.load.cache_clear()


@pytest.fixture(autouse=True)
def no_autograd():
    with torch.inference_mode():  # the kernels run only where autograd is off
        yield


def torch_path(fe: LogMel, x: torch.Tensor, monkeypatch) -> torch.Tensor:
    with monkeypatch.context() as m:
        m.setenv("EARSHOT_NATIVE", "0")
        native.load.cache_clear()
        assert fe._native_kernels(x) is None
        out = fe(x)
    native.load.cache_clear()
    return out


CONFIGS = [
    LogMelConfig(),  # the default: 16 kHz, 512-point FFT, hop 160
    LogMelConfig(sample_rate=32000, n_fft=2048, hop_length=1024, fmin=50.0),  # seed 000
    LogMelConfig(sample_rate=8000, n_fft=512, win_length=256, hop_length=80, fmin=20.0, fmax=3800.0),  # short window
    LogMelConfig(sample_rate=32000, n_fft=1024, hop_length=320, fmin=50.0, fmax=14000.0, pad_mode="reflect"),  # PANNs
    LogMelConfig(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, center=False, power=1.0,
                 mel_scale="htk", log="ln", log_offset=0.01, fmin=125.0, fmax=7500.0),  # VGGish: not centred
    LogMelConfig(n_fft=511, hop_length=100, n_mels=40, top_db=80.0),  # odd FFT, filters not a multiple of 16
]


@pytest.mark.parametrize("config", CONFIGS)
def test_kernels_compute_what_the_torch_ops_compute(config, kernels, monkeypatch):
    fe = LogMel(config)
    rng = np.random.default_rng(0)
    for shape in ((1, 700), (3, 16000), (9, 24001)):  # 9 clips of 1.5 s: more than one chunk for every setting
        x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32) * 0.1)
        x[0, : shape[1] // 3] = 0.0  # digital silence: the amin floor, or ln(offset)
        assert fe._native_kernels(x) is not None
        ours, ref = fe(x), torch_path(fe, x, monkeypatch)
        assert ours.shape == ref.shape
        assert (ours - ref).abs().max().item() < 1e-4


def test_nan_and_inf_stay_visible(kernels, monkeypatch):
    fe = LogMel(LogMelConfig())
    x = torch.randn(2, 8000) * 0.1
    x[0, 4000] = float("nan")
    x[1, 2000] = float("inf")
    ours, ref = fe(x), torch_path(fe, x, monkeypatch)
    assert torch.equal(torch.isnan(ours), torch.isnan(ref)) and torch.isnan(ours).any()
    finite = torch.isfinite(ref)
    assert (ours[finite] - ref[finite]).abs().max().item() < 1e-4


def test_grouped_filters_hold_the_whole_filterbank(kernels):
    fe = LogMel(LogMelConfig(n_mels=50))
    g = native.GroupedMel(fe.mel_t, kernels.mel_group_size())
    size = kernels.mel_group_size()
    dense = np.zeros((g.n_mels, fe.mel_t.shape[0]), np.float32)
    for i, (lo, hi, off) in enumerate(zip(g.lo_bins, g.hi_bins, g.offsets)):
        block = g.weights[off : off + (hi - lo) * size].reshape(hi - lo, size).T  # (size, bins)
        rows = dense[i * size : (i + 1) * size]
        rows[:, lo:hi] = block[: len(rows)]
    np.testing.assert_array_equal(dense, fe.mel_t.T.numpy())
    assert g.weights.size < 0.5 * fe.mel_t.numel()  # far fewer multiply-adds than the dense matmul


def test_torch_ops_wherever_the_kernels_do_not_apply(kernels):
    fe = LogMel(LogMelConfig())
    x = torch.randn(2, 4000)
    with torch.inference_mode(False), torch.enable_grad():
        assert fe._native_kernels(x) is None  # training: the torch ops
    with torch.no_grad():
        assert fe._native_kernels(x) is not None
    assert fe._native_kernels(x.double()) is not None  # forward() casts to float32 first
    assert LogMel(LogMelConfig(power=1.5))._native_kernels(x) is None
    assert LogMel(LogMelConfig(amin=0.0))._native_kernels(x) is None  # log of zero: -inf, torch's
    reflect = LogMel(LogMelConfig(pad_mode="reflect"))
    assert reflect._native_kernels(torch.randn(1, 200)) is None  # torch raises its own padding error
    conv = LogMel(LogMelConfig())
    conv.use_conv_stft()  # the exported graph's spectrum
    assert conv._native_kernels(x) is None


def test_disabled_or_unbuildable_means_the_torch_path(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("EARSHOT_NATIVE", "0")
    native.load.cache_clear()
    assert native.load() is None
    monkeypatch.setenv("EARSHOT_NATIVE", "1")
    monkeypatch.setenv("EARSHOT_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a compiler that fails
    native.load.cache_clear()
    with caplog.at_level(logging.INFO, logger="earshot.features.native"):
        assert native.load() is None
    assert "native kernels unavailable" in caplog.text
    fe = LogMel(LogMelConfig())
    x = torch.randn(2, 4000)
    assert fe(x).shape == (2, 26, 64)  # the torch ops
    assert not list(tmp_path.rglob("*.so")) and not list(tmp_path.rglob("tmp*"))  # no half-built library left
    native.load.cache_clear()


def test_by_default_the_kernels_run_only_where_they_were_measured_faster(monkeypatch):
    real = native.faster_here
    monkeypatch.delenv("EARSHOT_NATIVE", raising=False)
    native.load.cache_clear()
    monkeypatch.setattr(native, "faster_here", lambda: False)
    assert native.load() is None
    native.load.cache_clear()
    monkeypatch.setenv("EARSHOT_NATIVE", "1")  # forced on, on any CPU
    forced = native.load()
    native.load.cache_clear()
    monkeypatch.setenv("EARSHOT_NATIVE", "auto")
    monkeypatch.setattr(native, "faster_here", lambda: True)
    assert (native.load() is None) == (forced is None)  # where faster, auto builds them (given a compiler)
    native.load.cache_clear()
    assert real() == torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def test_built_once_per_source_compiler_and_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("EARSHOT_NATIVE", "1")
    native.load.cache_clear()
    if native.load() is None:
        pytest.skip("no C compiler here")
    first = native._build(tmp_path)
    stamp = os.stat(first).st_mtime_ns
    assert native._build(tmp_path) == first and os.stat(first).st_mtime_ns == stamp  # reused, not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_same_values_on_any_number_of_threads(kernels):
    fe = LogMel(LogMelConfig())
    x = torch.randn(5, 20000) * 0.1
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fe(x)
        torch.set_num_threads(2)
        two = fe(x)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)  # each frame is computed whole by one thread


def test_the_build_folder_needs_no_optional_package(tmp_path, monkeypatch):
    import sys

    from earshot.paths import cache_dir

    monkeypatch.delenv("EARSHOT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pooch", None)  # a core install: no `pretrained` extra
    assert cache_dir() == tmp_path / "earshot"
