"""DP-SGD for the image and toy GANs (train.dp_epsilon): the accountant's ε, one D step by hand,
a tiny private run and its model.json, the refused configs, resume."""

import contextlib
import copy
import json
import warnings

import pytest
import torch
from opacus.accountants import RDPAccountant
from torch.nn import functional as F

from gankit.config import load_config
from gankit.engine import resume, train
from gankit.engine.callbacks import Callback
from gankit.engine.checkpoint import load_state
from gankit.errors import ConfigError
from gankit.models.dp_gan import DPGAN, PoissonImages
from gankit.models.gan import build

TINY_DCGAN = [
    "data.name=digits",
    "model.family=dcgan",
    "model.latent_dim=8",
    "model.g_width=8",
    "model.d_width=8",
    "train.batch_size=32",
    "train.steps=6",
    "train.d_steps=2",
    "train.progress=false",
    "train.log_every=2",
    "train.checkpoint_every=3",
    "train.sample_every=3",
    "train.dp_epsilon=10",
]
TINY_MLP = [
    "data.name=ring",
    "data.n_samples=200",
    "model.family=mlp",
    "model.latent_dim=2",
    "model.g_width=4",
    "model.d_width=4",
    "model.g_depth=1",
    "model.d_depth=1",
    "train.batch_size=20",
    "train.optimizer=sgd",
    "train.lr_d=0.5",
    "train.dp_epsilon=3",
    "train.dp_max_grad_norm=0.1",
]


def _accountant_epsilon(sigma: float, rate: float, steps: int, delta: float) -> float:
    acc = RDPAccountant()
    for _ in range(steps):
        acc.step(noise_multiplier=sigma, sample_rate=rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Optimal order is the largest alpha"
        return acc.get_epsilon(delta)


@pytest.fixture(scope="module")
def private_run(tmp_path_factory):
    """A tiny private DCGAN on digits, 6 steps of 2 D updates (about 1 s)."""
    torch.set_num_threads(1)
    return train(load_config(None, TINY_DCGAN), tmp_path_factory.mktemp("dp") / "run")


def test_private_run_records_the_accountants_epsilon(private_run):
    spec = json.loads((private_run.path / "model.json").read_text())
    dp = spec["dp"]
    assert dp["steps"] == 12 and dp["sample_rate"] == pytest.approx(32 / spec["data"]["n"])
    expected = _accountant_epsilon(dp["noise_multiplier"], dp["sample_rate"], 12, dp["delta"])
    assert dp["epsilon"] == pytest.approx(expected, rel=1e-9)
    # calibrated to the target: Opacus's get_noise_multiplier stops within 0.01 below it
    assert 9.9 <= dp["epsilon"] <= 10.0 and dp["target_epsilon"] == 10.0
    assert spec["preprocessing"]["range"] == [-1, 1]
    assert any("pixel range [-1, 1]" in item for item in dp["public"])
    history = [
        json.loads(line) for line in (private_run.path / "metrics.jsonl").read_text().splitlines()
    ]
    assert history and all("loss_d" not in row for row in history)  # D's loss reads real data


def test_one_discriminator_step_is_the_per_sample_clip_and_noise_loop():
    torch.manual_seed(0)
    model, provider = build(load_config(None, TINY_MLP))
    assert isinstance(model, DPGAN) and isinstance(provider, PoissonImages)
    d, g = copy.deepcopy(model.networks["d"]), model.networks["g"]  # d: before Opacus's hooks
    model.attach(torch.device("cpu"), lambda net: net, contextlib.nullcontext)
    optimizer = model.configure_optimizers()["d"]
    real = provider.batch(0).x
    m = len(real)
    noise, dp_noise = torch.Generator(), torch.Generator()
    noise.set_state(model.noise.get_state())
    dp_noise.set_state(model.dp_noise.get_state())
    with torch.no_grad():
        fake = g(torch.randn(m, model.latent_dim, generator=noise))
    params = list(d.parameters())
    total = [torch.zeros_like(p) for p in params]
    for i in range(m):  # each (real, fake) pair's gradient, clipped to C as one
        loss = F.softplus(d(fake[i : i + 1])).sum() + F.softplus(-d(real[i : i + 1])).sum()
        grads = torch.autograd.grad(loss, params)
        norm = torch.sqrt(sum(gr.pow(2).sum() for gr in grads))
        scale = min(1.0, 0.1 / (float(norm) + 1e-6))
        total = [t + scale * gr for t, gr in zip(total, grads, strict=True)]
    sigma, expected_batch = model.sigma, 20.0
    want = [
        p - 0.5 * (t + torch.randn(p.shape, generator=dp_noise) * sigma * 0.1) / expected_batch
        for p, t in zip(params, total, strict=True)
    ]
    model.private_d_step(real, g, model.networks["d"], optimizer)
    got = list(model.networks["d"].parameters())
    assert m > 0 and sigma > 0
    for a, b in zip(got, want, strict=True):
        assert torch.allclose(a, b.detach(), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["model.d_batch_norm=true"], "model.d_batch_norm=false"),
        (["objective.gradient_penalty=10"], "objective.gradient_penalty=0"),
        (["objective.r1=1"], "objective.r1=0"),
        (["model.pack=2"], "model.pack=1"),
        (["model.spectral_norm=true"], "model.spectral_norm=false"),
        (["train.dp_delta=0.001"], "not below 1/n"),
        (["objective.loss=hinge"], "objective.loss=non-saturating"),
    ],
)
def test_configs_dp_cannot_cover_are_refused(extra, message):
    with pytest.raises(ConfigError, match=message):
        build(load_config(None, [*TINY_DCGAN, *extra]))


@pytest.mark.parametrize(
    "extra", [["train.dp_epsilon=0"], ["train.dp_delta=2"], ["model.family=cdcgan"]]
)
def test_bad_dp_keys_are_config_errors(extra):
    with pytest.raises(ConfigError, match="dp_"):
        load_config(None, [*TINY_DCGAN, *extra])


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer, stats) -> None:
        trainer.should_stop = trainer.step >= self.step


def test_resume_is_bit_identical(private_run, tmp_path):
    part = train(load_config(None, TINY_DCGAN), tmp_path / "part", callbacks=[StopAt(3)])
    assert part.step == 3
    resumed = resume(part.path)
    a, b = load_state(private_run.path), load_state(resumed.path)
    for net in ("g", "d"):
        na, nb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(na[k], nb[k]) for k in na)
    assert a["provider"] == b["provider"] and a["model"]["spent"] == b["model"]["spent"]
    spec = json.loads((resumed.path / "model.json").read_text())
    assert spec["dp"]["steps"] == 12
