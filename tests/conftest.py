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


TINY_INFOGAN = [  # the codes' path, not the training, is what the tests that share it check
    "model.g_width=8",
    "model.d_width=8",
    "model.q_width=8",
    "model.noise_dim=4",
    "train.batch_size=16",
    "train.steps=2",
    "train.progress=false",
    "train.log_every=1",
    "train.checkpoint_every=100",
    "train.sample_every=100",
]


@pytest.fixture(scope="session")
def infogan_run(tmp_path_factory):
    """The digits InfoGAN recipe (10 categories, 2 continuous codes) trained 2 tiny steps, in a
    directory named `infogan` (its served name): the codes' CLI, service and page tests."""
    from pathlib import Path

    from gankit.engine import train

    torch.set_num_threads(1)
    recipe = Path(__file__).resolve().parents[1] / "configs" / "digits-infogan.yaml"
    out = tmp_path_factory.mktemp("codes") / "infogan"
    return train(load_config(recipe, TINY_INFOGAN), out).path
