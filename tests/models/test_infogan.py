"""InfoGAN: the information term by hand, Q on D's body, codes end to end, resume, errors."""

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import gankit
from gankit.config import load_config
from gankit.engine import resume, train
from gankit.engine.callbacks import Callback
from gankit.engine.checkpoint import load_state
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.generator import load_generator
from gankit.metrics.codes import code_class_agreement
from gankit.modeldir import write_spec
from gankit.models.infogan import (
    body_features,
    feature_dim,
    info_loss,
    load_code_classifier,
    split_codes,
)
from gankit.nets import build_discriminator, build_generator

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPE = CONFIGS / "digits-infogan.yaml"
TINY = [
    "model.g_width=8",
    "model.d_width=8",
    "model.q_width=8",
    "model.noise_dim=4",
    "train.batch_size=16",
    "train.steps=6",
    "train.progress=false",
    "train.log_every=2",
    "train.checkpoint_every=3",
    "train.sample_every=3",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The recipe trained for 6 tiny steps (under a second)."""
    torch.set_num_threads(1)
    return train(load_config(RECIPE, TINY), tmp_path_factory.mktemp("infogan") / "run").path


# --- the pieces, by hand --------------------------------------------------------------------------
def test_information_term_by_hand():
    # K = 2, C = 1. Logits [0, ln 3] for category 1: CE = -ln(3/4); [0, 0] for 0: CE = ln 2.
    # Continuous: mean 0.5; sample 1 log-std 0, code 1.5: NLL = ½ln2π + ½·1²;
    # sample 2 log-std ln 2, code 0.5: NLL = ½ln2π + ln 2.
    ln3, ln2 = math.log(3.0), math.log(2.0)
    q_out = torch.tensor([[0.0, ln3, 0.5, 0.0], [0.0, 0.0, 0.5, ln2]])
    cat, cont = torch.tensor([1, 0]), torch.tensor([[1.5], [0.5]])
    loss, stats = info_loss(q_out, cat, cont, 2, lambda_cat=1.0, lambda_cont=0.5)
    ce = (-math.log(0.75) + ln2) / 2
    nll = (0.5 * math.log(2 * math.pi) * 2 + 0.5 + ln2) / 2
    assert float(loss) == pytest.approx(ce + 0.5 * nll)
    assert stats["info_cat"] == pytest.approx(ln2 - ce)  # the bound's categorical part
    assert stats["q_cont_nll"] == pytest.approx(nll)
    only_cat, _ = info_loss(q_out[:, :2], cat, cont[:, :0], 2, 1.0, 0.5)
    assert float(only_cat) == pytest.approx(ce)


def test_fixed_std_information_term_by_hand():
    # q_std = 2: Q outputs the mean only. Code 1.5, mean 0.5: NLL = ½ln2π + ln 2 + 1²/(2·4);
    # code -1, mean 1: NLL = ½ln2π + ln 2 + 2²/8. With q_std = 1 the NLL is ½ln2π + ½(c − μ)².
    q_out = torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 1.0]])
    cat, cont = torch.tensor([0, 1]), torch.tensor([[1.5], [-1.0]])
    loss, stats = info_loss(q_out, cat, cont, 2, lambda_cat=0.0, lambda_cont=1.0, q_std=2.0)
    const = 0.5 * math.log(2 * math.pi) + math.log(2.0)
    assert float(loss) == pytest.approx(const + (1 / 8 + 4 / 8) / 2)
    assert stats["q_cont_nll"] == pytest.approx(float(loss))
    unit, _ = info_loss(q_out, cat, cont, 2, lambda_cat=0.0, lambda_cont=1.0, q_std=1.0)
    assert float(unit) == pytest.approx(0.5 * math.log(2 * math.pi) + (0.5 + 2.0) / 2)


def test_noise_reconstruction_term_by_hand():
    # K = 2, C = 1 (learned std), N = 2 noise estimates in the last columns. Sample 1: noise
    # (0.5, 1.0), estimates (0.2, -1.0): squared error 0.09 + 4 = 4.09; sample 2: noise (1, 0),
    # estimates (0, 0): 1. Batch mean 2.545, times λ_noise 0.5, beside CE and NLL as before.
    ln3, ln2 = math.log(3.0), math.log(2.0)
    q_out = torch.tensor([[0.0, ln3, 0.5, 0.0, 0.2, -1.0], [0.0, 0.0, 0.5, ln2, 0.0, 0.0]])
    cat, cont = torch.tensor([1, 0]), torch.tensor([[1.5], [0.5]])
    noise = torch.tensor([[0.5, 1.0], [1.0, 0.0]])
    loss, stats = info_loss(q_out, cat, cont, 2, 1.0, 0.5, noise=noise, lambda_noise=0.5)
    ce = (-math.log(0.75) + ln2) / 2
    nll = (0.5 * math.log(2 * math.pi) * 2 + 0.5 + ln2) / 2
    assert stats["q_noise_mse"] == pytest.approx(2.545)
    assert float(loss) == pytest.approx(ce + 0.5 * nll + 0.5 * 2.545)


def test_instance_noise_anneals_to_zero():
    from gankit.models.infogan import build

    model, _ = build(load_config(RECIPE, [*TINY, "model.instance_noise=0.5"]))
    x = torch.zeros(1000, 1, 8, 8)
    state = model.noise.get_state()
    first = model.instance_noise(x)  # step 0 of 6: std 0.5, drawn from the model's noise RNG
    model.noise.set_state(state)
    assert torch.equal(first, 0.5 * torch.randn(x.shape, generator=model.noise))
    model.step_count = 3  # half way: std 0.25
    assert float(model.instance_noise(x).std()) == pytest.approx(0.25, rel=0.05)
    model.step_count = 6
    assert torch.equal(model.instance_noise(x), x)


@pytest.mark.parametrize("net", ["dcgan", "mlp"])
def test_small_noise_std_is_folded_into_the_saved_generator(net):
    from gankit.models.infogan import build

    model, _ = build(load_config(RECIPE, [*TINY, f"model.net={net}", "model.noise_std=0.1"]))
    z = model.latent(
        SimpleNamespace(local=lambda t: t)
    )  # codes untouched, the 4 noise dims at std 0.1
    assert float(z[:, 12:].std()) < 0.2 and float(z[:, 10:12].std()) > 0.5
    unit = z.clone()
    unit[:, 12:] /= 0.1
    weights, _ = model.export()
    saved = build_generator(model.arch).eval()
    saved.load_state_dict({k: v for k, v in weights.items() if k in saved.state_dict()})
    # the saved G on N(0, 1) noise is the trained G on N(0, 0.1²) noise
    assert torch.allclose(saved(unit), model.networks["g"].eval()(z), atol=1e-5)
    assert torch.equal(model.preview()[0], model.networks["g"](model.fixed_noise))


def test_q_head_batch_norm():
    from gankit.models.infogan import q_head

    assert isinstance(q_head(6, 4, 3, 1, batch_norm=True)[1], torch.nn.BatchNorm1d)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in q_head(6, 4, 3, 1))


def test_separate_q_has_a_body_of_its_own():
    from gankit.models.infogan import SeparateQ, build

    model, _ = build(load_config(RECIPE, [*TINY, "model.q_shared=false"]))
    q, d = model.networks["q"], model.networks["d"]
    assert isinstance(q, SeparateQ)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in q.modules())  # D has BN
    assert {id(p) for p in q.parameters()}.isdisjoint(id(p) for p in d.parameters())
    assert q(torch.zeros(3, 1, 8, 8)).shape == (3, 10 + 2 * 2)


def test_q_reads_augmented_samples():
    from gankit.models.infogan import augmenter

    x = torch.arange(64.0).view(1, 1, 8, 8).repeat(50, 1, 1, 1)
    assert augmenter("")(x) is x
    torch.manual_seed(0)
    moved = augmenter("translation")(x)  # shifts of up to 1 pixel, zeros filled in
    assert moved.shape == x.shape and not torch.equal(moved, x)
    assert set(moved.unique().tolist()) <= set(range(64))


def test_codes_are_read_from_z():
    z = torch.tensor([[0.1, 2.0, -0.3, 0.7, 9.0], [1.0, -1.0, 0.4, 0.2, 9.0]])
    cat, cont = split_codes(z, 2, 2)
    assert cat.tolist() == [1, 0]
    assert torch.equal(cont, z[:, 2:4])


@pytest.mark.parametrize("net", ["dcgan", "mlp"])
def test_q_shares_the_discriminator_body(net):
    arch = {"family": net, "latent_dim": 4, "g_width": 4, "d_width": 4, "data_shape": [1, 8, 8]}
    d = build_discriminator(arch).eval()
    x = torch.randn(3, 1, 8, 8)
    h = body_features(d, x)
    assert h.shape == (3, feature_dim(d))
    head = d.head if net == "dcgan" else d.net[-1]
    assert torch.allclose(head(h).squeeze(1), d(x))  # the body is all of D but its score


# --- the recipe on the engine -------------------------------------------------------------------
def test_trained_generator_samples_with_codes(run):
    gen = load_generator(run)
    assert gen.codes == {"categorical": 10, "continuous": 2} and gen.num_classes is None
    assert gen.latent_dim == 16 and gen.sample(4, seed=0).shape == (4, 1, 8, 8)
    fixed = gen.sample(4, seed=0, codes={"categorical": 3, "continuous": [0.5, None]})
    z = gen.sample_latent(4, seed=0)
    z[:, :10] = torch.nn.functional.one_hot(torch.tensor(3), 10).float()
    z[:, 10] = 0.5
    assert torch.equal(fixed, gen.decode(z))
    assert gen.traversal("categorical", rows=2).shape == (20, 1, 8, 8)
    assert gen.traversal(1, steps=5, rows=2).shape == (10, 1, 8, 8)
    for codes, message in [
        ({"categorical": 10}, r"0\.\.9"),
        ({"continuous": [1.0]}, "2 finite numbers"),
        ({"continuous": [float("nan"), 0.0]}, "finite"),
        ({"style": 1}, "'categorical' and/or 'continuous'"),
    ]:
        with pytest.raises(DataError, match=message):
            gen.sample(2, seed=0, codes=codes)
    with pytest.raises(DataError, match=r"continuous code 0\.\.1"):
        gen.traversal(2)


def test_q_head_classifies_real_digits(run):
    record = code_class_agreement(run)
    assert record.n_real == 360 and 0.1 <= record.value <= 1.0
    assert sum(record.details["code_counts"]) == 360
    assert load_code_classifier(run).logits(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(DataError, match="shape"):
        load_code_classifier(run).predict(torch.zeros(2, 64))


def test_report_draws_code_traversals(run):
    from gankit.report import _image_sections

    gen = load_generator(run)
    titles = [t for t, _ in _image_sections(run, gen, gen.sample(8, seed=0), None, "")]
    assert titles[:2] == ["Samples", "Latent code traversals"]


def test_plain_generator_refuses_codes(tmp_path):
    from gankit.bench.serve import make_generator_dir

    gen = load_generator(make_generator_dir(tmp_path / "plain", width=8, latent_dim=8))
    assert gen.codes is None
    with pytest.raises(DataError, match="no latent codes"):
        gen.sample(2, codes={"categorical": 1})
    with pytest.raises(ConfigError, match="InfoGAN"):
        gen.traversal("categorical")
    with pytest.raises(CheckpointError, match="not an InfoGAN"):
        load_code_classifier(tmp_path / "plain")


def test_codes_in_model_json_must_fit(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    spec = json.loads((copy / "model.json").read_text())
    write_spec(copy, {**spec, "codes": {**spec["codes"], "categorical": 4}})
    with pytest.raises(CheckpointError, match="codes"):
        load_generator(copy)


class StopAt(Callback):
    """Stops the run after `step` steps (a checkpoint is written there)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer, stats) -> None:
        trainer.should_stop = trainer.step >= self.step


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["model.net=dcgan", "model.q_std=1", "model.instance_noise=0.3"],
        ["model.net=dcgan", "model.noise_std=0.1", "model.q_batch_norm=true"],
        ["model.continuous=1", "model.lambda_noise=2"],
        ["model.net=dcgan", "model.q_shared=false", "model.q_augment=translation,cutout"],
    ],
)
def test_resume_is_bit_identical(tmp_path, options):
    settings = [*TINY, "model.net=mlp", "train.ema=0.9", *options]
    full = train(load_config(RECIPE, settings), tmp_path / "full")
    # stopped at step 3 of 6 (not a 3-step run resumed to 6: instance noise anneals over 6)
    part = train(load_config(RECIPE, settings), tmp_path / "part", callbacks=[StopAt(3)])
    assert part.step == 3
    resumed = resume(part.path)
    a, b = load_state(full.path), load_state(resumed.path)
    for net in ("g", "d", "q"):
        na, nb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(na[k], nb[k]) for k in na)
    assert (
        gankit.load_generator(full.path)
        .sample(4, seed=1, codes={"categorical": 2})
        .equal(gankit.load_generator(resumed.path).sample(4, seed=1, codes={"categorical": 2}))
    )
    assert load_code_classifier(resumed.path).logits(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["model.categorical=1"], ">= 2 categories"),
        (["model.categorical=0", "model.continuous=0"], "needs a code"),
        (["model.lambda_cat=-1"], "lambda_cat"),
        (["model.q_std=-1"], "q_std"),
        (["model.instance_noise=-0.1"], "instance_noise"),
        (["model.noise_std=0"], "noise_std"),
        (["model.lambda_noise=-1"], "lambda_noise"),
        (["model.q_augment=rotate"], "q_augment"),
        (["model.net=resnet"], "model.net"),
        (["data.name=ring"], "model.net=mlp"),
        (["objective.unroll_steps=2"], "unroll_steps"),
    ],
)
def test_config_errors(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        train(load_config(RECIPE, [*TINY, *extra]), tmp_path / "run")


def test_quick_infogan_bench(tmp_path):
    """Protocol and scoring of `gankit bench infogan --quick`, never its goal."""
    from gankit.bench import run_benchmark

    result = run_benchmark("infogan", quick=True, out=tmp_path)
    assert list(result["measured"]) == [
        "infogan",
        "k-means on pixels",
        "k-means on D's body features",
    ]
    assert 0.1 <= result["per_seed"][0]["kmeans_d_body"] <= 1.0
    (seed,) = result["per_seed"]
    assert 0.1 <= seed["agreement"] <= 1.0 and sum(seed["code_counts"]) == 360
    assert result["measured"]["k-means on pixels"]["mean"] > 0.6  # pixels cluster by digit
    assert json.loads((tmp_path / "infogan.json").read_text())["benchmark"] == "infogan"
