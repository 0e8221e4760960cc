import pytest

from earshot.config import RunConfig, load_config, parse_overrides, save_config
from earshot.errors import ConfigError


def test_recipe_then_overrides(tmp_path):
    r = tmp_path / "r.yaml"
    r.write_text("name: demo\noptim: {lr: 1e-3}\nmodel: {name: kong2018_cnn, frontend: {n_mels: 40}}\n")
    cfg = load_config(r, ["optim.lr=3e-4", "trainer.max_epochs=2", "trainer.min_steps=0", "data.labels=[a, b]", "trainer.patience=null"])
    assert cfg.name == "demo" and cfg.optim.lr == pytest.approx(3e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.model.frontend == {"n_mels": 40} and cfg.data.labels == ["a", "b"] and cfg.trainer.patience is None


def test_unknown_keys_suggest_the_right_one():
    with pytest.raises(ConfigError, match="unknown config key 'optim.lrr'; did you mean 'optim.lr'"):
        load_config(None, ["optim.lrr=1"])


def test_wrong_types_are_rejected():
    with pytest.raises(ConfigError, match="trainer.max_epochs: expected int"):
        load_config(None, ["trainer.max_epochs=ten"])
    with pytest.raises(ConfigError, match="optim.lr: expected a number"):
        load_config(None, ["optim.lr=fast"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["optim.lr"])


def test_saved_config_loads_back(tmp_path):
    cfg = load_config(None, ["seed=7", "data.clip_seconds=2.5"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert RunConfig().seed == 0


def test_enum_like_fields_are_checked_when_the_config_loads():
    with pytest.raises(ConfigError, match=r"augment.mixup_on: 'logmell' is not one of \['waveform', 'logmel'\]; "
                                          r"did you mean 'logmel'\?"):
        load_config(None, ["augment.mixup_on=logmell"])
    with pytest.raises(ConfigError, match="optim.schedule: 'cosin' is not one of"):
        load_config(None, ["optim.schedule=cosin"])
    with pytest.raises(ConfigError, match=r"augment.noise_colours\[1\]: 'blue' is not one of"):
        load_config(None, ["augment.noise_colours=[white, blue]"])
    with pytest.raises(ConfigError, match="task.name: 'detect' is not one of"):
        load_config(None, ["task.name=detect"])
    with pytest.raises(ConfigError, match=r"task.train_on\[0\]: 'strog' is not one of"):
        load_config(None, ["task.name=detection", "task.train_on=[strog]"])
    assert load_config(None, ["task.name=tagging", "optim.schedule=staged"]).optim.schedule == "staged"


def test_user_mistakes_are_one_line_errors_not_tracebacks(tiny_dataset, tmp_path, capsys):
    from earshot.cli import main

    m = f"data.manifest={tiny_dataset}"
    for args, needle in ((["train", "model.name=resnet999", m, f"out_dir={tmp_path}"], "unknown model 'resnet999'"),
                         (["train", "model.name=samplecnn", "model.args.block=res3", m, f"out_dir={tmp_path}"],
                          "model.args.block: 'res3' is not one of"),
                         (["train", "model.name=samplecnn", "augment.specaugment=true", m, f"out_dir={tmp_path}"],
                          "need a log-mel model"),
                         (["train", "augment.filter_augment=true", "augment.filter_db=[6,-6]", m, f"out_dir={tmp_path}"],
                          "augment.filter_db must be [low, high]"),
                         (["train", "augment.filter_augment=true", "augment.filter_bands=[0,2]", m, f"out_dir={tmp_path}"],
                          "augment.filter_bands [min, max]"),
                         (["train", "optim.schedule=cosin"], "optim.schedule"),
                         (["cv", "data.manifest=x.jsonl", "folds=a,b"], "folds are whole numbers")):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and needle in err and "Traceback" not in err
