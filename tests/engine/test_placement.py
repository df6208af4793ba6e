"""Model parallelism (`train.placement`): the hooks that carry tensors across devices, and the
checks of the setting. Only CPU exists here, so the cross-device moves are shown on the `meta`
device (a real second device type) and a CPU-only placement must train exactly as none."""

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from gankit.engine import train
from gankit.engine.distributed import DistContext
from gankit.engine.placement import check_placement, place
from gankit.errors import ConfigError


def test_inputs_follow_the_network_and_outputs_come_home():
    net = place(nn.Linear(3, 2), torch.device("meta"), torch.device("meta"))
    out = net(torch.ones(4, 3))  # a CPU input: the pre-hook moves it to the network's device
    assert out.device.type == "meta" and out.shape == (4, 2)
    home = place(nn.Linear(3, 2), torch.device("cpu"), torch.device("meta"))
    assert home(torch.ones(4, 3)).device.type == "meta"  # the output hook moved it home


def test_placement_keeps_the_weights_names_and_the_result(tmp_path, toy_config):
    """Placed networks train through the hooks (here on the run's own device): same weights,
    same names, with the EMA copy hooked like its network."""
    settings = ["train.steps=6", "train.checkpoint_every=6"]
    settings.append("train.ema=0.9")
    plain = train(toy_config(*settings), tmp_path / "plain")
    placed = train(
        toy_config(*settings, "train.placement={g: cpu, d: cpu}"),
        tmp_path / "placed",
    )
    a, b = load_file(plain.path / "model.safetensors"), load_file(placed.path / "model.safetensors")
    assert a and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("placement", "message"),
    [
        ({"q": "cpu"}, "this model's networks are g, d"),
        ({"g": "cuda:3"}, "CUDA"),
        ({"g": "warp-drive"}, "train.placement.g"),
    ],
)
def test_bad_placements_are_config_errors(placement, message):
    networks = {"g": nn.Linear(1, 1), "d": nn.Linear(1, 1)}
    with pytest.raises(ConfigError, match=message):
        check_placement(placement, networks, DistContext())


def test_placement_with_torchrun_is_refused():
    networks = {"g": nn.Linear(1, 1)}
    with pytest.raises(ConfigError, match="torchrun"):
        check_placement({"g": "cpu"}, networks, DistContext(rank=0, world_size=2))


def test_placement_is_checked_from_the_config(toy_config, tmp_path):
    with pytest.raises(ConfigError, match="expected dict"):
        toy_config("train.placement=[g, d]")
    with pytest.raises(ConfigError, match="'q'"):
        train(toy_config("train.steps=1", "train.placement={q: cpu}"), tmp_path / "r")
