import pytest
import torch

from gankit.config import load_config

TINY_TOY = [
    "data.name=ring",
    "data.n_samples=512",
    "model.family=mlp",
    "model.latent_dim=4",
    "model.g_width=16",
    "model.d_width=16",
    "model.g_output=none",
    "train.batch_size=32",
    "train.steps=20",
    "train.progress=false",
    "train.log_every=5",
    "train.checkpoint_every=10",
    "train.sample_every=10",
]
TINY_DIGITS = [
    "data.name=digits",
    "model.family=dcgan",
    "model.latent_dim=8",
    "model.g_width=8",
    "model.d_width=8",
    "train.batch_size=16",
    "train.steps=6",
    "train.progress=false",
    "train.log_every=2",
    "train.checkpoint_every=3",
    "train.sample_every=3",
]


@pytest.fixture(autouse=True)
def _single_thread():
    """Tests run two at a time on 2 cores: one thread each avoids oversubscription."""
    torch.set_num_threads(1)


@pytest.fixture
def toy_config():
    def make(*extra: str):
        return load_config(None, [*TINY_TOY, *extra])

    return make


@pytest.fixture
def digits_config():
    def make(*extra: str):
        return load_config(None, [*TINY_DIGITS, *extra])

    return make
