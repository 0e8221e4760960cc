import numpy as np
import pytest
import torch

from earshot.features.cache import FeatureCache
from earshot.features.frontends import BandStats, LogMel, LogMelConfig, Normalize, mel_filterbank
from tests.conftest import tone, write_wav


def test_shape_and_frame_count():
    cfg = LogMelConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=40)
    y = LogMel(cfg)(torch.randn(3, 16000))
    assert y.shape == (3, cfg.frames(16000), 40)


def test_tone_energy_lands_in_the_right_band():
    cfg = LogMelConfig(sample_rate=16000, n_mels=64)
    y = LogMel(cfg)(torch.from_numpy(tone(freq=1000.0))[None])[0]
    centre = np.argmax(y.mean(0).numpy())
    fb = mel_filterbank(16000, cfg.n_fft, 64)
    peak_bin_hz = np.argmax(fb[centre]) * 16000 / cfg.n_fft
    assert abs(peak_bin_hz - 1000) < 100


@pytest.mark.parametrize("sr,n_fft,win,hop,n_mels,fmin,fmax", [
    (16000, 512, None, 160, 64, 0.0, None), (32000, 2048, None, 1024, 64, 50.0, None),
    (8000, 512, 256, 80, 64, 20.0, 3800.0)])
def test_matches_librosa(sr, n_fft, win, hop, n_mels, fmin, fmax):
    librosa = pytest.importorskip("librosa")
    x = np.random.default_rng(0).standard_normal((2, sr)).astype(np.float32) * 0.1
    cfg = LogMelConfig(sample_rate=sr, n_fft=n_fft, win_length=win, hop_length=hop, n_mels=n_mels, fmin=fmin, fmax=fmax)
    ours = LogMel(cfg)(torch.from_numpy(x)).numpy()
    ref = librosa.power_to_db(librosa.feature.melspectrogram(
        y=x, sr=sr, n_fft=n_fft, win_length=win, hop_length=hop, n_mels=n_mels, fmin=fmin, fmax=fmax),
        ref=1.0, amin=1e-10, top_db=None).transpose(0, 2, 1)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-3


def test_top_db_clamps_dynamic_range():
    y = LogMel(LogMelConfig(top_db=40.0))(torch.from_numpy(tone())[None])
    assert (y.amax() - y.amin()).item() <= 40.0 + 1e-4


def test_band_stats_and_normalize():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, (50, 4)), rng.normal(3, 2, (70, 4))
    st = BandStats()
    st.update(a)
    st.update(b)
    mean, std = st.result()
    both = np.concatenate([a, b])
    assert np.allclose(mean, both.mean(0), atol=1e-5) and np.allclose(std, both.std(0), atol=1e-5)
    norm = Normalize(4)
    norm.set_stats(mean, std)
    z = norm(torch.from_numpy(both).float()).numpy()
    assert np.allclose(z.mean(0), 0, atol=1e-4) and np.allclose(z.std(0), 1, atol=1e-3)


def test_config_key_changes_with_any_setting():
    assert LogMelConfig().key() == LogMelConfig().key()
    assert LogMelConfig().key() != LogMelConfig(hop_length=161).key()


def test_feature_cache_hits_and_is_never_stale(tmp_path):
    wav = write_wav(tmp_path / "a.wav", tone())
    calls = []

    def compute():
        calls.append(1)
        return np.full((3, 2), float(len(calls)), np.float32)

    cfg = LogMelConfig()
    with FeatureCache(tmp_path / "f.h5", cfg) as c:
        first = c.get(str(wav), compute)
        again = c.get(str(wav), compute)
        assert np.array_equal(first, again) and len(calls) == 1 and c.hits == 1
    with FeatureCache(tmp_path / "f.h5", LogMelConfig(n_mels=32)) as c:  # other settings: other group
        assert c.get(str(wav), compute)[0, 0] == 2.0
    write_wav(wav, tone(freq=880))  # the file changes: the entry is recomputed
    with FeatureCache(tmp_path / "f.h5", cfg) as c:
        assert c.get(str(wav), compute)[0, 0] == 3.0 and c.misses == 1


@pytest.mark.parametrize("config", [
    LogMelConfig(sample_rate=8000, n_fft=512, win_length=256, hop_length=80, fmin=20.0),  # short window, centred
    LogMelConfig(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, center=False, power=1.0,
                 mel_scale="htk", log="ln", log_offset=0.01, fmin=125.0, fmax=7500.0),  # VGGish-like, not centred
    LogMelConfig(sample_rate=16000, n_fft=512, hop_length=160, fmin=300.0, fmax=3000.0, pad_mode="reflect"),
])
def test_convolution_spectrum_matches_the_fft_path(config):
    """The exported graph's spectrum (a convolution over the window's support and the bins the mel
    filters use) gives the FFT path's frames and values, for every length."""
    fft = LogMel(config)
    conv = LogMel(config)
    conv.use_conv_stft()
    n_bins = config.n_fft // 2 + 1
    assert conv.dft_kernels.shape[0] < 2 * n_bins or conv.dft_kernels.shape[-1] < (config.win_length or config.n_fft)
    rng = np.random.default_rng(0)
    for n in (4000, 4037, 12345):
        x = torch.from_numpy(rng.standard_normal((2, n)).astype(np.float32) * 0.1)
        a, b = fft(x), conv(x)
        assert a.shape == b.shape
        assert (a - b).abs().max().item() < 2e-3
