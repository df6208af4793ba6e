"""DP training of TabularGAN: ε against Opacus's accountant, clipping, metadata, bad config."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from safetensors.torch import load_file

from gankit.engine.model import Batch
from gankit.errors import ConfigError, DataError
from gankit.models.tabular.dp import DPCritic
from gankit.nets.tabular import Span
from gankit.tabular import TabularGAN
from gankit.tabular.dp import noisy_sampler

TINY = {"n_steps": 6, "hidden": (16,), "z_dim": 4, "ema": 0.0, "random_state": 0}
PUBLIC = {"epsilon": 3.0, "delta": 1e-5, "public": ["ranges", "categories"]}
# x's range declared (and narrower than the data), c's categories declared public
DECLARED = {"epsilon": 3.0, "delta": 1e-5, "public": ["categories"], "bounds": {"x": [0.0, 3.0]}}


def table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"c": rng.choice(["a", "b"], size=n, p=[0.7, 0.3]), "x": rng.normal(2.0, 1.0, n)}
    )


@pytest.fixture(scope="module")
def private_model(tmp_path_factory) -> tuple[TabularGAN, object]:
    model = TabularGAN(**TINY, dp=DECLARED).fit(table(), discrete_columns=["c"])
    path = model.save(tmp_path_factory.mktemp("dp") / "m")
    return model, path


def test_reported_epsilon_is_opacus_rdp_accountant(private_model):
    model, _ = private_model
    rec = model.dp_
    q, steps = rec["sample_rate"], rec["steps"]
    assert q == pytest.approx(30 / 120) and steps == 6  # expected batch min(500, n // 4) = 30
    # the DP-SGD noise is Opacus's calibration for 90 % of ε (10 % to the category counts)
    assert rec["noise_multiplier"] == get_noise_multiplier(
        target_epsilon=2.7, target_delta=1e-5, sample_rate=q, steps=steps, accountant="rdp"
    )
    acc = RDPAccountant()
    acc.history = [(rec["noise_multiplier"], q, steps), (rec["histogram_noise_multiplier"], 1, 1)]
    assert rec["epsilon"] == pytest.approx(acc.get_epsilon(1e-5), rel=1e-12)
    assert 2.9 <= rec["epsilon"] <= 3.0  # spends the target, never more (bisection tolerance)
    # one release less (no histogram) would have cost less: the histogram is accounted
    alone = RDPAccountant()
    alone.history = [(rec["noise_multiplier"], q, steps)]
    assert alone.get_epsilon(1e-5) < rec["epsilon"]


def test_model_json_holds_epsilon_and_no_training_rows(private_model):
    model, path = private_model
    spec = json.loads((path / "model.json").read_text())
    assert spec["dp"]["epsilon"] == model.dp_["epsilon"]
    assert spec["dp"]["public"] == ["categories"] and spec["dp"]["declared"] == ["x"]
    assert spec["metrics"]["privacy"] is None  # the DCR report reads the data: not published
    assert "train_reference" not in load_file(path / "model.safetensors")
    loaded = TabularGAN.load(path)
    assert loaded.dp_ == spec["dp"]
    assert loaded.sample(20, seed=1).equals(model.sample(20, seed=1))
    with pytest.raises(ConfigError, match="keeps no training rows"):
        loaded.distance_to_closest_record(table(5))


def test_declared_range_replaces_the_data_and_bad_categories_are_counted(private_model):
    model, _ = private_model
    x = model.schema_.columns[1]
    assert (x.min, x.max) == (0.0, 3.0)  # declared, though the data reach below 0 and above 3
    assert model.encoder_.modes["x"] == {"means": [1.5], "stds": [0.375]}  # no mixture fit
    assert model.sample(200, seed=0)["x"].between(0.0, 3.0).all()
    bad = table()
    bad.loc[[3, 7], "c"] = "z"
    dp = {**PUBLIC, "categories": {"c": ["a", "b", "never"]}}
    with pytest.raises(DataError, match="2 training value"):
        TabularGAN(**TINY, dp=dp).fit(bad, discrete_columns=["c"])


@pytest.mark.parametrize(
    ("dp", "extra", "match"),
    [
        ({"epsilon": -1}, {}, "epsilon must be in"),
        ({**PUBLIC, "delta": 0.5}, {}, "is not below 1/rows"),
        ({"epsilon": 1, "noise": 2}, {}, "unknown keys"),
        ({"delta": 1e-5}, {}, "no 'epsilon'"),
        ({"epsilon": 1, "public": ["everything"]}, {}, "public items"),
        ({"epsilon": 1}, {}, r"columns \['c', 'x'\] have no declared range"),
        ({"epsilon": 1, "bounds": {"x": [2, 1]}}, {}, "low < high"),
        (PUBLIC, {"early_stopping": True}, "early_stopping"),
        ("yes", {}, "dp must be a dict"),
    ],
)
def test_bad_dp_config_errors(dp, extra, match):
    with pytest.raises(ConfigError, match=match):
        TabularGAN(**{**TINY, **extra}, dp=dp).fit(table(), discrete_columns=["c"])


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_critic_step_clips_each_pair_and_adds_no_noise_at_sigma_zero():
    """With sigma = 0 the update is sum_i clip(grad of pair i) / expected batch, checked
    against a loop over the pairs."""
    torch.manual_seed(0)
    spans = [Span(1, "tanh"), Span(1, "softmax")]
    sampler = noisy_sampler(np.zeros((4, 2), np.float32), [], None, torch.Generator())
    model = DPCritic(
        spans, sampler, sigma=0.0, max_grad_norm=0.01, expected_batch=8.0, g_batch=4, z_dim=2,
        hidden=(4,),
    )  # fmt: skip
    model.attach(torch.device("cpu"), lambda m: m, None)
    for m in model.networks["d"].modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    d, g = model.networks["d"], model.networks["g"]
    x = torch.tensor([[0.1, 1.0], [-0.5, 1.0], [0.9, 1.0], [0.3, 1.0]])
    before = [p.detach().clone() for p in d.parameters()]
    torch.manual_seed(1)
    with torch.no_grad():
        fake = model.activation(g(model.noise(4), torch.zeros(4, 0)))
    expected = [torch.zeros_like(p) for p in d.parameters()]
    model.grad_sample.disable_hooks()  # the reference loop needs plain gradients only
    for i in range(4):
        loss = torch.nn.functional.softplus(d(fake[i : i + 1])) + torch.nn.functional.softplus(
            -d(x[i : i + 1])
        )
        grads = torch.autograd.grad(loss.sum(), list(d.parameters()))
        norm = torch.sqrt(sum(gr.pow(2).sum() for gr in grads))
        assert norm > 0.01  # every pair is clipped here, so a missing clip would show
        for e, gr in zip(expected, grads, strict=True):
            e += gr * min(1.0, 0.01 / (float(norm) + 1e-6)) / 8.0
    model.grad_sample.enable_hooks()
    opt = torch.optim.SGD(d.parameters(), lr=1.0)
    torch.manual_seed(1)
    model.private_critic_step(Batch(x, extra={"real_cond": torch.zeros(4, 0)}), g, d, opt)
    for b, p, e in zip(before, d.parameters(), expected, strict=True):
        assert torch.allclose(b - p.detach(), e, atol=1e-6)


def test_v1_models_shows_the_privacy_budget(private_model):
    from gankit.serve.models import load_models

    model, path = private_model
    served, refused = load_models([path])
    assert not refused
    (entry,) = served.values()
    info = entry.info()
    assert info["spec"]["dp"]["epsilon"] == model.dp_["epsilon"]
    assert info["spec"]["dp"]["delta"] == 1e-5
