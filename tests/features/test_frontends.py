from dataclasses import replace

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


def _pcen_reference(mel_power: np.ndarray, cfg: LogMelConfig) -> np.ndarray:
    """PCEN by its recursion, frame by frame, in float64: ``(T, F)`` mel power -> ``(T, F)``."""
    t = cfg.pcen_time_constant * cfg.sample_rate / cfg.hop_length
    s = (np.sqrt(1 + 4 * t**2) - 1) / (2 * t**2)
    e = mel_power.astype(np.float64) * cfg.pcen_gain
    m = np.empty_like(e)
    prev = e[0]  # the smoother starts in its steady state for the first frame
    for i in range(len(e)):
        prev = m[i] = (1 - s) * prev + s * e[i]
    return (e / (m + 1e-6) ** cfg.pcen_alpha + cfg.pcen_delta) ** cfg.pcen_r - cfg.pcen_delta**cfg.pcen_r


def test_pcen_follows_its_recursion_through_a_level_step():
    """A noise 20 dB quieter for its first half, then louder: PCEN equals the frame-by-frame recursion
    (with the smoother's impulse response cut at 1e-4), and its adaptive gain brings the loud half back
    near the quiet half's level within a second, where the dB differ by 20."""
    cfg = LogMelConfig(sample_rate=16000, n_fft=1024, hop_length=256, n_mels=32, fmin=20.0, log="pcen")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000 * 6) * np.r_[np.full(48000, 0.01), np.full(48000, 0.1)]
    x = torch.from_numpy(x.astype(np.float32))[None]
    ours = LogMel(cfg)(x)[0].numpy()
    db = LogMel(replace(cfg, log="db"))(x)[0].numpy()
    ref = _pcen_reference(10.0 ** (db / 10.0), cfg)
    assert ours.shape == db.shape
    assert np.abs(ours - ref).max() < 1e-3 * np.abs(ref).max()
    quiet, loud = ours[60:180].mean(), ours[-60:].mean()  # settled, 1 s after the step
    assert abs(loud - quiet) < 0.1 * quiet
    assert ours[188:195].mean() > 3 * quiet  # the onset of the louder noise stands out


def test_pcen_matches_librosa_started_in_steady_state():
    librosa = pytest.importorskip("librosa")
    scipy_signal = pytest.importorskip("scipy.signal")
    cfg = LogMelConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=40, log="pcen", pcen_time_constant=0.2)
    x = np.random.default_rng(1).standard_normal(24000).astype(np.float32) * 0.1
    ours = LogMel(cfg)(torch.from_numpy(x)[None])[0].numpy()
    mel = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512, hop_length=160, n_mels=40).astype(np.float64)
    mel *= cfg.pcen_gain
    t = 0.2 * 16000 / 160
    b = (np.sqrt(1 + 4 * t**2) - 1) / (2 * t**2)
    zi = scipy_signal.lfilter_zi([b], [1, b - 1])[None, :] * mel[:, :1]  # librosa's own start assumes an input of 1
    ref = librosa.pcen(mel, sr=16000, hop_length=160, time_constant=0.2, gain=cfg.pcen_alpha, bias=cfg.pcen_delta,
                       power=cfg.pcen_r, eps=1e-6, zi=zi).T
    assert np.abs(ours - ref).max() < 1e-3


def test_pcen_settings_leave_the_default_cache_key_alone():
    assert LogMelConfig(log="pcen").key() != LogMelConfig().key()
    assert LogMelConfig(log="pcen").key() != LogMelConfig(log="pcen", pcen_alpha=0.8).key()
    assert LogMelConfig().key() == LogMelConfig(pcen_alpha=0.98, pcen_r=0.5).key()  # defaults stay out of the hash
