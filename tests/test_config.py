import pytest

from gankit.config import load_config, to_dict
from gankit.errors import ConfigError


def test_defaults_and_overrides():
    cfg = load_config(None, ["train.steps=7", "train.betas=[0.0, 0.9]", "model.family=mlp"])
    assert cfg.train.steps == 7 and cfg.train.betas == [0.0, 0.9] and cfg.model.family == "mlp"
    assert isinstance(cfg.train.lr_g, float)


def test_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 3\n  lr_d: 1\n")
    cfg = load_config(path)
    assert cfg.train.steps == 3 and cfg.train.lr_d == 1.0 and isinstance(cfg.train.lr_d, float)


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"train\.setps.*did you mean 'steps'"):
        load_config(None, ["train.setps=5"])
    with pytest.raises(ConfigError, match="unknown config key 'trian'"):
        load_config(None, ["trian.steps=5"])


def test_wrong_type_names_key_and_expected_type():
    with pytest.raises(ConfigError, match=r"train\.steps = 'many' has type str; expected int"):
        load_config(None, ["train.steps=many"])
    with pytest.raises(ConfigError, match="expected int"):
        load_config(None, ["train.steps=true"])


def test_impossible_values():
    with pytest.raises(ConfigError, match=r"train\.steps = 0 must be > 0"):
        load_config(None, ["train.steps=0"])
    with pytest.raises(ConfigError, match="choose one of"):
        load_config(None, ["objective.loss=fancy"])
    with pytest.raises(ConfigError, match=r"train\.ema"):
        load_config(None, ["train.ema=1.5"])
    with pytest.raises(ConfigError, match=r"data\.root is required"):
        load_config(None, ["data.name=mnist"])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="must look like"):
        load_config(None, ["train.steps"])


def test_shipped_recipes_load():
    from pathlib import Path

    recipes = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml"))
    assert len(recipes) >= 6
    for recipe in recipes:
        assert to_dict(load_config(recipe))["train"]["steps"] > 0
