"""Published checkpoints load through ``create_model(..., pretrained=...)``.

No weights can be downloaded here, so each test builds a state dict with the published key layout
(``data/published_layouts.json``, written by ``tools/published_layouts.py`` from the public model
definitions) and random values, saves it the way the original does, and loads it.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from earshot.errors import EarshotError
from earshot.models.registry import create_model

LAYOUTS = json.loads((Path(__file__).parent / "data" / "published_layouts.json").read_text())


def published_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in LAYOUTS[name].items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1000)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * 0.05
    if "logmel_extractor.melW" in sd:  # what PANNs stores: librosa's filterbank for its settings
        librosa = pytest.importorskip("librosa")
        sd["logmel_extractor.melW"] = torch.from_numpy(
            librosa.filters.mel(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000).T.copy())
    return sd


def save_panns(sd: dict, path: Path) -> Path:
    torch.save({"iteration": 600000, "model": sd}, path)  # PANNs' checkpoint layout
    return path


@pytest.mark.parametrize("name", ["panns_cnn6", "panns_cnn10", "panns_mobilenetv1", "panns_mobilenetv2"])
def test_panns_checkpoint_loads_strictly_and_runs(tmp_path, name):
    sd = published_state(name)
    m = create_model(name, 527, pretrained=str(save_panns(sd, tmp_path / "ckpt.pth"))).eval()
    own = m.state_dict()
    assert torch.equal(own["backbone.bn0.running_var"], sd["bn0.running_var"])
    assert torch.equal(own["head.hidden.1.weight"], sd["fc1.weight"])
    assert torch.equal(own["head.classifier.bias"], sd["fc_audioset.bias"])
    for k, v in sd.items():
        if not k.startswith(("spectrogram_extractor", "logmel_extractor", "fc1", "fc_audioset")):
            assert torch.equal(own["backbone." + k], v), k
    with torch.no_grad():
        out = m(torch.randn(2, 32000 * 2))
    assert out["clip_logits"].shape == (2, 527) and torch.isfinite(out["clip_logits"]).all()


def test_cnn14_with_a_new_head_keeps_fc1_and_initialises_the_classifier(tmp_path):
    sd = published_state("panns_cnn14")
    m = create_model("panns_cnn14", 10, pretrained=str(save_panns(sd, tmp_path / "Cnn14_mAP=0.431.pth")))
    assert torch.equal(m.state_dict()["head.hidden.1.weight"], sd["fc1.weight"])
    assert m.state_dict()["head.classifier.weight"].shape == (10, 2048)
    assert m.frontend_config.sample_rate == 32000 and m.frontend_config.pad_mode == "reflect"


def test_vggish_torchvggish_state_dict_loads(tmp_path):
    sd = published_state("vggish")
    torch.save(sd, tmp_path / "vggish-10086976.pth")  # the port saves a bare state dict
    m = create_model("vggish", 5, pretrained=str(tmp_path / "vggish-10086976.pth")).eval()
    assert torch.equal(m.state_dict()["backbone.embeddings.4.weight"], sd["embeddings.4.weight"])
    with torch.no_grad():
        emb = m.embed(torch.randn(1, 16000 * 3))
    assert emb.shape == (1, 3, 128)  # one embedding per 0.96 s patch


def test_a_checkpoint_of_another_architecture_lists_the_mismatches(tmp_path):
    path = save_panns(published_state("panns_cnn10"), tmp_path / "Cnn10.pth")
    with pytest.raises(EarshotError) as e:
        create_model("panns_cnn14", 527, pretrained=str(path))
    msg = str(e.value)
    assert "does not fit panns_cnn14" in msg and "missing" in msg and "conv_block5" in msg
    assert "of another shape" in msg and "head.hidden.1.weight" in msg


def test_missing_and_unexpected_keys_are_named(tmp_path):
    sd = published_state("panns_cnn6")
    del sd["conv_block2.bn1.weight"]
    sd["extra.layer.weight"] = torch.zeros(3)
    with pytest.raises(EarshotError, match=r"backbone\.conv_block2\.bn1\.weight.*unexpected.*backbone\.extra"):
        create_model("panns_cnn6", 527, pretrained=str(save_panns(sd, tmp_path / "c.pth")))


def test_a_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save_panns(published_state("panns_cnn6"), tmp_path / "Cnn6_mAP=0.343.pth")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EarshotError, match=r"Cnn6_mAP=0\.343\.pth: cannot read.*truncated"):
        create_model("panns_cnn6", 527, pretrained=str(path))


class _Payload:  # an object a weights_only load must refuse to build
    def __reduce__(self):
        return (print, ("this would have run",))


def test_a_checkpoint_that_holds_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "trap": _Payload()}, path)
    with pytest.raises(EarshotError, match="weights_only=True"):
        create_model("panns_cnn6", 527, pretrained=str(path))


def test_front_end_settings_other_than_the_checkpoints_are_refused(tmp_path):
    path = save_panns(published_state("panns_cnn6"), tmp_path / "c.pth")
    with pytest.raises(EarshotError, match="mel filterbank.*other front-end settings"):
        create_model("panns_cnn6", 527, frontend={"fmax": 8000.0}, pretrained=str(path))


def test_an_earshot_checkpoint_of_the_same_model_loads_as_a_backbone(tmp_path):
    from earshot.models.pretrained import load_pretrained

    src = create_model("cnn_small", 4)
    torch.save({"state_dict": {"model." + k: v for k, v in src.state_dict().items()},
                "earshot": {"model": src.describe(), "task": {"labels": list("abcd")}}}, tmp_path / "best.ckpt")
    m = create_model("cnn_small", 7)
    conv = load_pretrained(m, tmp_path / "best.ckpt")
    assert conv.fresh == ("head.",)
    for k, v in src.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(m.state_dict()[k], v), k
    with pytest.raises(EarshotError, match="earshot 'cnn_small' model, not 'resnet_small'"):
        load_pretrained(create_model("resnet_small", 7), tmp_path / "best.ckpt")


def test_unknown_names_and_missing_files(tmp_path):
    with pytest.raises(EarshotError, match="not found"):
        create_model("panns_cnn6", 3, pretrained=str(tmp_path / "nope.pth"))
    with pytest.raises(EarshotError, match="earshot download panns_cnn6"):
        import os
        os.environ["EARSHOT_CACHE"] = str(tmp_path)
        try:
            create_model("panns_cnn6", 3, pretrained="panns_cnn6")
        finally:
            del os.environ["EARSHOT_CACHE"]


def test_panns_log_mel_matches_torchlibrosa():
    """Our LogMel with PANNs' settings against PANNs' own front-end (torchlibrosa)."""
    stft = pytest.importorskip("torchlibrosa.stft")
    from earshot.features.frontends import LogMel, LogMelConfig
    from earshot.models.panns import PANNS_FRONTEND

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 32000 * 2, generator=g) * 0.1
    x[1] = 0.5 * torch.sin(2 * np.pi * 440 * torch.arange(32000 * 2) / 32000) + 0.01 * x[1]
    spec = stft.Spectrogram(n_fft=1024, hop_length=320, win_length=1024, window="hann", center=True,
                            pad_mode="reflect", freeze_parameters=True)
    mel = stft.LogmelFilterBank(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000, ref=1.0, amin=1e-10,
                                top_db=None, freeze_parameters=True)
    with torch.no_grad():
        ref = mel(spec(x))[:, 0]
        ours = LogMel(LogMelConfig(**PANNS_FRONTEND))(x)
    assert ref.shape == ours.shape
    # the stated tolerance: 1e-3 dB everywhere within 80 dB of the clip's peak (below that,
    # torchlibrosa's float32 convolution STFT leaks, e.g. 0.07 dB at -96 dB on a pure tone)
    loud = ref > ref.amax(dim=(1, 2), keepdim=True) - 80
    assert float((ref - ours).abs()[loud].max()) < 5e-3
    assert float((ref[0] - ours[0]).abs().max()) < 1e-3  # broadband noise: every bin


def test_vggish_log_mel_matches_the_reference_front_end():
    mf = pytest.importorskip("torchvggish.mel_features")
    from earshot.features.frontends import LogMel, LogMelConfig
    from earshot.models.vggish import VGGISH_FRONTEND

    x = np.random.RandomState(0).randn(16000 * 2) * 0.1
    ref = mf.log_mel_spectrogram(x, audio_sample_rate=16000, log_offset=0.01, window_length_secs=0.025,
                                 hop_length_secs=0.010, num_mel_bins=64, lower_edge_hertz=125, upper_edge_hertz=7500)
    ours = LogMel(LogMelConfig(**VGGISH_FRONTEND))(torch.from_numpy(x).float()[None])[0].numpy()
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-4
