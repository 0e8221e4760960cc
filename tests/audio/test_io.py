import numpy as np
import pytest
import soundfile as sf

from earshot.audio.io import fix_length, load_audio, probe_audio, resample
from earshot.errors import AudioError
from tests.conftest import tone, write_wav


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        load_audio(tmp_path / "missing.wav")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty file \(0 bytes\)"):
        load_audio(p)


def test_truncated_wav_is_detected(tmp_path):
    p = write_wav(tmp_path / "full.wav", tone(seconds=1.0))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(AudioError, match="truncated WAV"):
        load_audio(cut)
    head_only = tmp_path / "head.wav"
    head_only.write_bytes(p.read_bytes()[:30])
    with pytest.raises(AudioError, match="head.wav"):
        load_audio(head_only)


def test_non_audio_file_with_audio_extension(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is a text file, not audio\n" * 20)
    with pytest.raises(AudioError, match="notes.wav: not a readable audio file"):
        probe_audio(p)
    q = tmp_path / "fake.mp3"
    q.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(AudioError, match="fake.mp3"):
        load_audio(q)


def test_zero_length_clip(tmp_path):
    p = write_wav(tmp_path / "zero.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="zero-length"):
        load_audio(p)
    with pytest.raises(AudioError, match="zero-length"):
        probe_audio(p)


def test_nan_and_inf_samples(tmp_path):
    for bad in (np.nan, np.inf, -np.inf):
        x = tone()
        x[100] = bad
        p = write_wav(tmp_path / f"bad{bad}.wav", x, subtype="FLOAT")
        with pytest.raises(AudioError, match="NaN or inf"):
            load_audio(p)


def test_silent_clip_decodes_with_zero_peak(tmp_path):
    p = write_wav(tmp_path / "silent.wav", np.zeros(8000, np.float32))
    assert probe_audio(p, decode=True).peak == 0.0


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_bit_depths_decode_to_float32(tmp_path, subtype):
    x = tone()
    p = write_wav(tmp_path / f"{subtype}.wav", x, subtype=subtype)
    y, sr = load_audio(p)
    assert y.dtype == np.float32 and sr == 16000
    assert np.max(np.abs(y - x)) < 1e-3


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_mixdown(tmp_path, channels):
    x = tone(channels=channels)
    p = write_wav(tmp_path / f"c{channels}.wav", x)
    y, _ = load_audio(p)
    assert y.ndim == 1 and np.allclose(y, x.mean(1), atol=1e-3)
    z, _ = load_audio(p, mono=False)
    assert z.shape == (channels, len(x))


@pytest.mark.parametrize("sr", [8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000])
def test_any_rate_resamples_to_target(tmp_path, sr):
    p = write_wav(tmp_path / f"r{sr}.wav", tone(sr=sr, seconds=0.5, freq=1000), sr=sr)
    y, out_sr = load_audio(p, sample_rate=16000)
    assert out_sr == 16000 and abs(len(y) - 8000) <= 1
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 16000 / len(y) - 1000) < 10  # the tone stays at 1 kHz


def test_flac_and_ogg(tmp_path):
    for ext, fmt in (("flac", "FLAC"), ("ogg", "OGG")):
        p = tmp_path / f"a.{ext}"
        sf.write(p, tone(), 16000, format=fmt)
        y, sr = load_audio(p)
        assert sr == 16000 and len(y) == 8000


def test_fix_length_pads_and_crops():
    x = np.arange(10, dtype=np.float32) + 1
    assert fix_length(x, 4, 3).tolist() == [4, 5, 6, 7]
    assert fix_length(x, 4, 8).tolist() == [9, 10, 0, 0]
    assert fix_length(x[:2], 5, -2).tolist() == [0, 0, 1, 2, 0]


def test_resample_identity_and_length():
    x = np.random.default_rng(0).standard_normal(4410).astype(np.float32)
    assert resample(x, 44100, 44100) is x
    assert len(resample(x, 44100, 16000)) == 1600


def _with_extra_chunks(path) -> None:
    """Insert a LIST chunk of odd length (padded) before the data chunk, as many editors write."""
    import struct

    raw = path.read_bytes()
    at = raw.index(b"data")
    extra = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\x00"
    raw = raw[:at] + extra + raw[at:]
    raw = raw[:4] + struct.pack("<I", len(raw) - 8) + raw[8:]
    path.write_bytes(raw)


@pytest.mark.parametrize("subtype,fmt,channels", [("PCM_16", "WAV", 1), ("PCM_16", "WAV", 2),
                                                  ("FLOAT", "WAV", 1), ("PCM_16", "WAVEX", 3),
                                                  ("FLOAT", "WAVEX", 2), ("PCM_24", "WAV", 1),
                                                  ("PCM_U8", "WAV", 2), ("DOUBLE", "WAV", 1)])
def test_wavs_read_directly_equal_libsndfile_exactly(tmp_path, subtype, fmt, channels):
    from earshot.audio.io import _check_wav_truncation, _decode, _inspect

    rng = np.random.default_rng(3)
    x = np.clip(rng.normal(0, 0.3, (4001, channels)), -1, 1).astype(np.float32)
    x[0] = -1.0  # full scale both ways
    x[1] = 1.0
    p = tmp_path / "a.wav"
    sf.write(p, x, 22050, subtype=subtype, format=fmt)
    _with_extra_chunks(p)
    ref, sr = sf.read(p, dtype="float32", always_2d=True)
    direct = _check_wav_truncation(p)
    assert (direct is not None) == (subtype in ("PCM_16", "FLOAT"))  # others are left to libsndfile
    got, got_sr = _decode(*_inspect(p))
    assert got_sr == sr == 22050 and got.dtype == np.float32 and got.shape == (channels, 4001)
    np.testing.assert_array_equal(got, ref.T)
    mono, _ = load_audio(p)
    np.testing.assert_array_equal(mono, ref.mean(axis=1) if channels > 1 else ref[:, 0])


def test_a_directly_read_wav_still_reports_truncation_nan_and_zero_length(tmp_path):
    p = tmp_path / "t.wav"
    sf.write(p, np.zeros(1000, np.float32), 16000, subtype="PCM_16")
    p.write_bytes(p.read_bytes()[:-400])
    with pytest.raises(AudioError, match="truncated WAV"):
        load_audio(p)
    q = tmp_path / "nan.wav"
    y = np.zeros(100, np.float32)
    y[7] = np.nan
    sf.write(q, y, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="1 NaN or inf"):
        load_audio(q)
    z = tmp_path / "zero.wav"
    sf.write(z, np.zeros((0, 1), np.float32), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match="zero-length"):
        load_audio(z)
