"""Unpaired domains (`data.name: unpaired`): built-in digits pair, folders, batches, errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import load_config
from gankit.data.unpaired import (
    UnpairedBatches,
    builtin_domains,
    load_unpaired,
    mirror,
    thicken,
)
from gankit.errors import ConfigError


def _folder(path, n, mode="L", size=8, seed=0):
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        shape = (size, size) if mode == "L" else (size, size, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path / f"{i}.png")
    return path


def _data_cfg(*overrides):
    return load_config(None, ["data.name=unpaired", *overrides]).data


def test_builtin_digits_mirror_domains_are_disjoint_halves():
    data = builtin_domains("digits-mirror", "train", seed=3)
    assert len(data.a) + len(data.b) == 1437 and abs(len(data.a) - len(data.b)) <= 1
    assert data.shape == [1, 8, 8]
    # B is A's complement mirrored: un-mirrored, no B image equals an A image
    flat_a = data.a.reshape(len(data.a), -1)
    flat_b = mirror(data.b).reshape(len(data.b), -1)
    same = (torch.cdist(flat_a, flat_b) == 0).any(dim=1)
    from gankit.data.images import load_digits

    x, _ = load_digits("train")
    dupes = (torch.cdist(x.reshape(len(x), -1), x.reshape(len(x), -1)) == 0).sum() - len(x)
    assert int(same.sum()) <= int(dupes)  # only images that are duplicated in the digits
    assert data.spec()["n_a"] == len(data.a) and data.spec()["domains"] == "digits-mirror"


def test_thicken_adds_a_halo_of_six_tenths():
    x = torch.full((1, 1, 3, 3), -1.0)
    x[0, 0, 1, 1] = 1.0  # one white pixel
    out = thicken(x)[0, 0]
    assert out[1, 1] == 1.0 and out[0, 0] == -1.0  # itself kept, diagonals untouched
    assert torch.allclose(out[[0, 1, 1, 2], [1, 0, 2, 1]], torch.full((4,), 0.2))  # 0.6 → 0.2
    thick = builtin_domains("digits-thick", "test", seed=0)
    assert (thick.b > -1).float().mean() > (thick.a > -1).float().mean()  # more ink in B
    assert thick.spec()["b_is"].startswith("strokes thickened")


def test_folders_load_and_batches_pair_one_batch_of_each(tmp_path):
    cfg = _data_cfg(
        f"data.root_a={_folder(tmp_path / 'a', 6)}", f"data.root_b={_folder(tmp_path / 'b', 9)}"
    )
    data = load_unpaired(cfg)
    assert data.a.shape == (6, 1, 8, 8) and data.b.shape == (9, 1, 8, 8)
    assert data.a.min() >= -1 and data.a.max() <= 1
    batches = UnpairedBatches(data, 4, seed=0)
    first = batches.batch(0)
    assert first.x.shape == (4, 1, 8, 8) and first.extra["b"].shape == (4, 1, 8, 8)
    again = UnpairedBatches(data, 4, seed=0).batch(0)  # a function of (seed, index)
    assert torch.equal(first.x, again.x) and torch.equal(first.extra["b"], again.extra["b"])
    sharded = first.shard(lambda t: t[:2])  # DDP slices both domains
    assert sharded.extra["b"].shape[0] == 2


def test_bad_folders_and_settings_are_config_errors(tmp_path):
    grey, rgb = _folder(tmp_path / "grey", 2), _folder(tmp_path / "rgb", 2, "RGB")
    (tmp_path / "empty").mkdir()
    big = _folder(tmp_path / "big", 2, size=16)
    cases = [
        ([f"data.root_a={grey}"], r"data\.root_b is required"),
        ([f"data.root_a={tmp_path / 'nope'}", f"data.root_b={grey}"], "no such folder"),
        ([f"data.root_a={tmp_path / 'empty'}", f"data.root_b={grey}"], "holds no images"),
        ([f"data.root_a={grey}", f"data.root_b={rgb}"], r"greyscale.*colour.*data\.channels"),
        ([f"data.root_a={grey}", f"data.root_b={big}"], r"8×8.*16×16.*data\.image_size"),
        (["data.domains=digits-flip"], "not a built-in pair"),
        (["data.domains=digits-mirror", f"data.root_a={grey}"], "not both"),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError, match=message):
            load_unpaired(_data_cfg(*overrides))
    both = load_unpaired(_data_cfg(f"data.root_a={grey}", f"data.root_b={rgb}", "data.channels=3"))
    assert both.a.shape[1] == both.b.shape[1] == 3
    with pytest.raises(ConfigError, match="larger than domain A"):
        UnpairedBatches(
            load_unpaired(_data_cfg(f"data.root_a={grey}", f"data.root_b={grey}")), 5, 0
        )
