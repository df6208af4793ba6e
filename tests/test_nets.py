import pytest
import torch

from gankit.config import load_config, to_dict
from gankit.errors import ConfigError
from gankit.nets import architecture_spec, build_discriminator, build_generator
from gankit.nets.layers import Maxout, MinibatchStdDev


def spec(family, shape, *extra):
    cfg = load_config(
        None, [f"model.family={family}", "model.g_width=8", "model.d_width=8", *extra]
    )
    return architecture_spec(to_dict(cfg.model), shape)


@pytest.mark.parametrize("size", [8, 16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(size, channels):
    s = spec("dcgan", [channels, size, size])
    g, d = build_generator(s), build_discriminator(s)
    x = g(torch.randn(2, s["latent_dim"]))
    assert x.shape == (2, channels, size, size) and x.abs().max() <= 1
    assert d(x).shape == (2,)


def test_resnet_32_and_size_check():
    s = spec("resnet", [3, 32, 32], "model.spectral_norm=true")
    x = build_generator(s)(torch.randn(2, s["latent_dim"]))
    assert x.shape == (2, 3, 32, 32) and build_discriminator(s)(x).shape == (2,)
    with pytest.raises(ConfigError, match="image_size 32"):
        build_generator(spec("resnet", [3, 16, 16]))


def test_mlp_and_goodfellow():
    for family in ("mlp", "goodfellow"):
        s = spec(family, [1, 8, 8], "model.d_dropout=0.5")
        x = build_generator(s)(torch.randn(3, s["latent_dim"]))
        assert x.shape == (3, 1, 8, 8) and build_discriminator(s)(x).shape == (3,)


def test_spectral_norm_bounds_every_layer():
    s = spec("dcgan", [1, 8, 8], "model.spectral_norm=true")
    d = build_discriminator(s)
    for _ in range(30):  # power iterations converge during forward passes in train mode
        d(torch.randn(4, 1, 8, 8))
    d.eval()
    for module in d.modules():
        if isinstance(module, torch.nn.Linear):
            assert torch.linalg.matrix_norm(module.weight, ord=2) < 1.05


def test_maxout_and_minibatch_std():
    m = Maxout(3, 4, pieces=5)
    assert m(torch.randn(2, 3)).shape == (2, 4)
    layer = MinibatchStdDev(group_size=2)
    same = torch.ones(4, 3)
    assert torch.allclose(layer(same)[:, -1], torch.full((4,), 1e-4), atol=1e-3)
    assert layer(torch.randn(4, 2, 5, 5)).shape == (4, 3, 5, 5)
