import pytest

from earshot.config import RunConfig, load_config, parse_overrides, save_config
from earshot.errors import ConfigError


def test_recipe_then_overrides(tmp_path):
    r = tmp_path / "r.yaml"
    r.write_text("name: demo\noptim: {lr: 1e-3}\nmodel: {name: kong2018_cnn, frontend: {n_mels: 40}}\n")
    cfg = load_config(r, ["optim.lr=3e-4", "trainer.max_epochs=2", "data.labels=[a, b]", "trainer.patience=null"])
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
