import numpy as np
import pytest
import torch

from earshot.data.augment import WaveformAugment, filter_augment, mixup_apply, mixup_draw, spec_augment
from tests.conftest import tone


def test_same_seed_same_augmentation():
    aug = WaveformAugment(shift="wrap", shift_seconds=0.1, gain_db=6, noise_prob=1.0, sample_rate=16000)
    x = tone()
    a = aug(x, np.random.default_rng(3))
    b = aug(x, np.random.default_rng(3))
    c = aug(x, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_drawn_parameters_apply_deterministically():
    aug = WaveformAugment(shift="pad", shift_seconds=0.05, gain_db=3, noise_prob=0.5)
    p = aug.draw(np.random.default_rng(0))
    x = tone()
    assert np.array_equal(aug.apply(x, p), aug.apply(x, p))


def test_wrap_shift_keeps_energy_and_pad_shift_zero_fills():
    x = np.arange(1, 11, dtype=np.float32)
    wrap = WaveformAugment(shift="wrap", shift_seconds=1, sample_rate=3)
    pad = WaveformAugment(shift="pad", shift_seconds=1, sample_rate=3)
    from earshot.data.augment import WaveParams

    assert wrap.apply(x, WaveParams(shift=2)).tolist() == [9, 10, 1, 2, 3, 4, 5, 6, 7, 8]
    assert pad.apply(x, WaveParams(shift=2)).tolist() == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert pad.apply(x, WaveParams(shift=-3)).tolist() == [4, 5, 6, 7, 8, 9, 10, 0, 0, 0]


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
def test_coloured_noise_hits_the_drawn_snr(colour):
    from earshot.data.augment import WaveParams

    aug = WaveformAugment(noise_prob=1.0)
    x = tone(seconds=2.0)
    y = aug.apply(x, WaveParams(noise_colour=colour, noise_snr_db=10.0, noise_seed=1))
    snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert abs(snr - 10.0) < 0.1


def test_spec_augment_masks_bands_and_frames():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 50, 32)
    y = spec_augment(x, g, time_masks=2, time_width=10, freq_masks=2, freq_width=8)
    assert y.shape == x.shape and not torch.equal(x, y)
    assert (y == x.mean()).any()
    g2 = torch.Generator().manual_seed(0)
    assert torch.equal(y, spec_augment(x, g2, 2, 10, 2, 8))


def test_filter_augment_adds_a_smooth_gain_per_clip_within_range():
    x = torch.randn(6, 40, 64)
    y = filter_augment(x, torch.Generator().manual_seed(0), (-6.0, 6.0), (3, 6), 6)
    gain = y - x
    assert torch.allclose(gain, gain[:, :1].expand_as(gain), atol=1e-5)  # one gain curve over all frames
    g = gain[:, 0]  # (B, F)
    assert g.abs().max() <= 6.0 + 1e-5 and g.abs().max() > 1.0
    assert not torch.allclose(g[0], g[1])  # each clip its own filter
    steps = (g[:, 1:] - g[:, :-1]).abs().max()
    assert steps <= 12.0 / 6 + 1e-4  # linear between edges at least 6 bins apart: at most 12 dB over 6 bins
    again = filter_augment(x, torch.Generator().manual_seed(0), (-6.0, 6.0), (3, 6), 6)
    assert torch.equal(y, again)
    # standardised features: one dB is 1 / std units of each band
    std = torch.full((64,), 4.0)
    z = filter_augment(x, torch.Generator().manual_seed(0), (-6.0, 6.0), (3, 6), 6, db_per_unit=1.0 / std)
    assert torch.allclose((z - x) * 4.0, gain, atol=1e-4)
    # more bands than fit at the narrowest width: fewer, wider bands
    assert filter_augment(torch.zeros(2, 5, 8), torch.Generator().manual_seed(1), (-3, 3), (3, 6), 6).shape == (2, 5, 8)


def test_mixup_is_a_convex_combination():
    g = torch.Generator().manual_seed(1)
    perm, lam = mixup_draw(8, 0.4, g)
    assert sorted(perm.tolist()) == list(range(8)) and 0.5 <= lam <= 1
    x = torch.randn(8, 100)
    assert torch.allclose(mixup_apply(x, perm, lam), lam * x + (1 - lam) * x[perm])


def test_background_mix_snr_and_determinism(tmp_path):
    from earshot.data.augment import BackgroundMix, chain
    from earshot.errors import DataError
    from tests.conftest import write_wav

    rng = np.random.default_rng(0)
    write_wav(tmp_path / "bg" / "hum.wav", (0.1 * rng.standard_normal(4000)).astype(np.float32), 8000)
    mix = BackgroundMix(tmp_path / "bg", 8000, snr_db=(6.0, 6.0))
    x = (0.2 * np.sin(np.arange(12000) / 5)).astype(np.float32)  # longer than the background: it loops
    y = mix(x, np.random.default_rng(1))
    noise = y - x
    snr = 20 * np.log10(np.sqrt(np.mean(x**2)) / np.sqrt(np.mean(noise**2)))
    assert snr == pytest.approx(6.0, abs=0.01)
    np.testing.assert_array_equal(y, mix(x, np.random.default_rng(1)))
    silent = np.zeros(100, np.float32)
    assert mix(silent, np.random.default_rng(0)) is silent  # nothing to mix against
    both = chain(None, mix)
    assert both(x, np.random.default_rng(1)).shape == x.shape
    with pytest.raises(DataError, match="no audio files"):
        BackgroundMix(tmp_path / "empty", 8000)
