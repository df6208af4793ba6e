"""The registry is the one table of model kinds and families: nothing else compares kind names."""

import re
from pathlib import Path

import pytest

from gankit import registry
from gankit.errors import CheckpointError, ConfigError

SRC = Path(registry.__file__).parent


def test_no_module_but_the_registry_spells_a_kind_name():
    """A kind literal outside registry.py is a string comparison the registry should answer."""
    literal = re.compile("[\"'](" + "|".join(map(re.escape, registry.KINDS)) + ")[\"']")
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "registry.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if literal.search(code) and ("==" in code or " in " in code or "kind" in code):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offenders == []


def test_every_kind_resolves_its_loader_serving_adapter_and_exporter():
    for name, entry in registry.KINDS.items():
        assert callable(registry._resolve(entry.loader)), name
        if entry.serve:
            assert callable(entry.serving()), name
        if entry.exporter:
            assert callable(registry._resolve(entry.exporter)), name


def test_every_family_builds_its_config_section():
    from gankit.config import load_config

    for name in registry.FAMILIES:
        cfg = load_config(None, [f"model.family={name}"])
        assert type(cfg.model) is registry.family(name).config_class()


def test_unknown_names_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'dcgan'"):
        registry.family("dcgn")
    with pytest.raises(CheckpointError, match="unknown model kind 'nope'"):
        registry.kind("nope", tmp_path)


def test_a_config_holds_only_the_keys_of_its_sections(tmp_path):
    from gankit.config import load_config, to_dict

    digits = to_dict(load_config(None, ["data.name=digits", "model.family=dcgan"]))
    assert "radius" not in digits["data"] and "maxout_pieces" not in digits["model"]
    with pytest.raises(ConfigError, match=r"unknown config key 'data\.radius'"):
        load_config(None, ["data.name=digits", "data.radius=2"])
    ring = load_config(None, ["data.name=ring", "model.family=goodfellow", "model.depth=3"])
    assert (ring.model.g_depth, ring.model.d_depth) == (3, 3)  # the old single depth still reads
    pac = load_config(None, ["model.family=goodfellow", "model.g_depth=4", "model.d_depth=3"])
    assert (pac.model.g_depth, pac.model.d_depth, pac.model.d_input_dropout) == (4, 3, 0.2)
