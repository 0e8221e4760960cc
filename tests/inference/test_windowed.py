"""Files of any length: streamed decoding, windows cut as blocks arrive, per-window scores."""

import csv
import io

import numpy as np
import pytest

from earshot.audio.io import load_audio, stream_audio
from earshot.cli import main
from earshot.data.windows import window_starts
from earshot.errors import AudioError, ConfigError
from earshot.inference.predictor import Predictor
from earshot.inference.windowed import iter_windows
from tests.conftest import write_wav


@pytest.mark.parametrize("n", [1, 999, 1000, 1001, 2500, 7777])
@pytest.mark.parametrize("block", [1, 333, 1000, 5000])
@pytest.mark.parametrize("win,hop", [(1000, 500), (1000, 1000), (1000, 1300)])
def test_streamed_windows_are_those_of_the_whole_recording(n, block, win, hop):
    x = np.arange(n, dtype=np.float32)
    blocks = [x[i : i + block] for i in range(0, n, block)]
    got = [(s, w) for starts, wins in iter_windows(blocks, win, hop, batch=3) for s, w in zip(starts, wins)]
    assert [s for s, _ in got] == window_starts(n, win, hop)
    for s, w in got:  # each window is the recording from its start, zero-padded past the end
        expect = np.zeros(win, np.float32)
        expect[: max(0, min(win, n - s))] = x[s : s + win]
        assert np.array_equal(w, expect)


def test_stream_audio_equals_whole_file_decoding_resampled_and_mixed_down(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 44100 * 3)) * 0.1).astype(np.float32)
    p = write_wav(tmp_path / "st.wav", x.T, 44100, "FLOAT")
    stream = stream_audio(p, 16000, block_seconds=0.7)
    got = np.concatenate(list(stream))
    ref, _ = load_audio(p, 16000)
    assert len(got) == len(ref) == stream.samples and np.abs(got - ref).max() < 1e-6
    assert stream.notes() == ["mixed 2 channels down to mono", "resampled 44100 Hz -> 16000 Hz"]


def test_stream_audio_names_the_file_for_bad_input(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav.*empty file"):
        list(stream_audio(empty, 16000))
    nan = write_wav(tmp_path / "nan.wav", np.full(1600, np.nan, np.float32), 16000, "FLOAT")
    with pytest.raises(AudioError, match="nan.wav.*NaN"):
        list(stream_audio(nan, 16000))
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="junk.flac.*not a readable audio file"):
        list(stream_audio(junk, 16000))


def test_streamed_file_prediction_equals_in_memory_prediction(trained_run, tmp_path):
    pred = Predictor.load(trained_run / "checkpoints" / "best.ckpt")
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(int(pred.sample_rate * 7.3)) * 0.1).astype(np.float32)
    p = write_wav(tmp_path / "long.wav", x, pred.sample_rate, "FLOAT")
    streamed = pred.predict(p)
    in_memory = pred.predict_array(load_audio(p, None)[0], pred.sample_rate)
    assert np.abs(streamed.probs - in_memory.probs).max() < 1e-6


def test_predict_cli_writes_each_windows_scores_with_times(trained_run, tmp_path, capsys):
    pred = Predictor.load(trained_run / "checkpoints" / "best.ckpt")
    sr = pred.sample_rate
    p = write_wav(tmp_path / "long.wav", (np.random.default_rng(2).standard_normal(sr * 5) * 0.1).astype(np.float32),
                  sr, "FLOAT")
    ckpt = str(trained_run / "checkpoints" / "best.ckpt")
    assert main(["predict", ckpt, str(p), "--window", "2", "--hop", "1.5", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["file", "start", "end"] + pred.labels
    spans = [(float(r[1]), float(r[2])) for r in rows[1:]]
    assert spans == [(0.0, 2.0), (1.5, 3.5), (3.0, 5.0)]
    for r in rows[1:]:  # softmax scores of each window
        assert abs(sum(float(v) for v in r[3:]) - 1) < 1e-3
    with pytest.raises(ConfigError, match="shorter than the model's shortest input"):
        next(pred.predict_windows(p, window=0.001))


def test_bf16_inference_agrees_with_float32(trained_run, tmp_path):
    import torch

    from earshot.inference.predictor import resolve_precision

    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu")) in ("fp32", "bf16")
    with pytest.raises(Exception, match="use auto, fp32 or bf16"):
        resolve_precision("fp8", torch.device("cpu"))
    ck = trained_run / "checkpoints" / "best.ckpt"
    full, half = Predictor.load(ck, precision="fp32"), Predictor.load(ck, precision="bf16")
    rng = np.random.default_rng(6)
    for i in range(4):
        x = (rng.standard_normal(full.sample_rate * 2) * 0.1).astype(np.float32)
        a, b = full.predict_array(x, full.sample_rate), half.predict_array(x, full.sample_rate)
        assert np.abs(a.probs - b.probs).max() < 0.03 and a.label == b.label
