import numpy as np
import soundfile as sf

from earshot.data.synth import noise_clips


def test_noise_clips_are_labelled_levelled_and_repeatable(tmp_path):
    a = noise_clips(tmp_path / "a", "Other", 6, 16000, 1.0, seed=3)
    b = noise_clips(tmp_path / "b", "Other", 6, 16000, 1.0, seed=3)
    assert [c.labels for c in a] == [["Other"]] * 6 and a[0].split == "train"
    for x, y in zip(a, b):
        xa, _ = sf.read(x.path)
        xb, _ = sf.read(y.path)
        assert np.array_equal(xa, xb)
        rms = 20 * np.log10(np.sqrt(np.mean(xa**2)))
        assert -41 < rms < -9
    assert {c.extra["generated"] for c in a} == {"white noise", "pink noise", "brown noise"}
