"""Semi-supervised GAN: the three losses by hand, labelled batches, resume, the classifier API."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from gankit.config import load_config
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.models.ssgan import (
    SemiSupervisedBatches,
    choose_labelled,
    feature_matching_loss,
    load_classifier,
    supervised_loss,
    train_supervised,
    unsupervised_loss,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPE = CONFIGS / "digits-ssgan.yaml"
TINY = [
    "model.g_width=16",
    "model.d_widths=[16, 8]",
    "model.latent_dim=4",
    "model.labelled_batch=8",
    "train.batch_size=16",
    "train.steps=6",
    "train.progress=false",
    "train.log_every=2",
    "train.checkpoint_every=3",
    "train.sample_every=3",
]
LN3 = math.log(3.0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The recipe trained for 6 tiny steps (under a second)."""
    torch.set_num_threads(1)
    return train(load_config(RECIPE, TINY), tmp_path_factory.mktemp("ssgan") / "run").path


# --- the losses, by hand ------------------------------------------------------------------------
def test_supervised_loss_by_hand():
    # CE of [0, ln 3] for class 1: -ln(3/4); of [0, 0] for class 0: ln 2
    logits = torch.tensor([[0.0, LN3], [0.0, 0.0]])
    expected = (-math.log(0.75) + math.log(2.0)) / 2
    assert float(supervised_loss(logits, torch.tensor([1, 0]))) == pytest.approx(expected)


def test_unsupervised_loss_by_hand():
    # Z = Σ exp(l): [0, ln 3] -> 4, [0, 0] -> 2. D = Z / (Z + 1).
    # real: -ln D = ln(5/4) and ln(3/2); fake: -ln(1 - D) = ln 5 and ln 3
    real = torch.tensor([[0.0, LN3], [0.0, 0.0]])
    fake = torch.tensor([[LN3, 0.0], [0.0, 0.0]])
    expected = (math.log(1.25) + math.log(1.5)) / 2 + (math.log(5.0) + math.log(3.0)) / 2
    assert float(unsupervised_loss(real, fake)) == pytest.approx(expected)
    # the log-sum-exp form stays finite where exp(l) overflows
    huge = torch.full((2, 3), 1000.0)
    assert float(unsupervised_loss(huge, -huge)) == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(float(unsupervised_loss(-huge, huge)))


def test_feature_matching_loss_by_hand():
    # batch means [2, 3] and [1, 1]: squared differences 1 and 4, mean 2.5
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    assert float(feature_matching_loss(real, fake)) == pytest.approx(2.5)


# --- labels and batches -------------------------------------------------------------------------
def test_labelled_set_and_batches():
    labels = torch.tensor([0, 1, 2] * 10)
    chosen = choose_labelled(labels, 3, 4, seed=0)
    assert torch.bincount(labels[chosen]).tolist() == [4, 4, 4]
    assert torch.equal(chosen, choose_labelled(labels, 3, 4, seed=0))
    assert not torch.equal(chosen, choose_labelled(labels, 3, 4, seed=1))
    x = torch.arange(30.0)[:, None]
    batches = SemiSupervisedBatches(x, labels, chosen, 8, 5, seed=0)
    batch = batches.batch(3)
    assert batch.x.shape == (8, 1) and batch.labels is None
    assert len(batch.extra["x_labelled"]) == 5
    lab_idx = batch.extra["x_labelled"][:, 0].long()
    assert set(lab_idx.tolist()) <= set(chosen.tolist())
    assert torch.equal(batch.extra["y_labelled"], labels[lab_idx])
    with pytest.raises(ConfigError, match="class 0 has 10 samples"):
        choose_labelled(labels, 3, 11, seed=0)


# --- the recipe, resume, the classifier ---------------------------------------------------------
def test_classifier_api(run):
    from gankit.data import load_digits

    clf = load_classifier(run)
    x, y = load_digits("test")
    proba = clf.predict_proba(x.numpy())
    assert proba.shape == (360, 10) and np.allclose(proba.sum(1), 1.0)
    assert np.array_equal(clf.predict(x.numpy().reshape(360, 64)), proba.argmax(1))
    assert 0.0 <= clf.score(x.numpy(), y.numpy()) <= 1.0
    assert list(clf.classes_) == list(range(10))
    bad = x.numpy()[:2].copy()
    bad[0, 0, 0, 0] = np.nan
    for X, message in [
        (bad, "NaN"),
        (np.zeros((2, 63)), "shape"),
        (np.zeros(64), "shape"),
        (np.zeros((0, 64)), "n >= 1"),
        ([["a"] * 64], "numeric"),
    ]:
        with pytest.raises(DataError, match=message):
            clf.predict(X)
    gen = gankit.load_generator(run)  # G samples as any image generator
    assert gen.sample(3, seed=0).shape == (3, 1, 8, 8)


def test_load_classifier_needs_an_ssgan(tmp_path):
    from gankit.bench.serve import make_generator_dir

    with pytest.raises(CheckpointError, match="not a semi-supervised GAN"):
        load_classifier(make_generator_dir(tmp_path / "plain", width=8, latent_dim=8))


def test_supervised_baseline_fits_its_labels():
    cfg = load_config(
        RECIPE, [*TINY, "model.d_widths=[64]", "model.input_noise=0", "model.hidden_noise=0"]
    )
    x = torch.randn(20, 1, 8, 8)
    y = torch.arange(20) % 10
    clf = train_supervised(x, y, cfg.model, cfg.train, steps=200, seed=0)
    assert clf.score(x.numpy(), y.numpy()) >= 0.9


def test_classifier_average_by_hand():
    import contextlib

    from gankit.engine.model import Batches
    from gankit.models.ssgan import build

    model, provider = build(load_config(RECIPE, [*TINY, "model.classifier_ema=0.9"]))
    model.attach(torch.device("cpu"), lambda net: net, contextlib.nullcontext)
    before = {k: v.clone() for k, v in model.networks["d"].state_dict().items()}
    model.training_step(Batches(lambda: provider.batch(0)), model.configure_optimizers())
    after = model.networks["d"].state_dict()
    average = model.classifier().state_dict()
    assert not torch.equal(after["head.weight"], before["head.weight"])
    for k in before:  # one D update: θ̄ = 0.9 θ0 + 0.1 θ1
        assert torch.allclose(average[k], 0.9 * before[k] + 0.1 * after[k], atol=1e-7)


@pytest.mark.parametrize("options", [[], ["model.classifier_ema=0.9"]])
def test_resume_is_bit_identical(tmp_path, options):
    settings = [*TINY, "train.ema=0.9", *options]
    full = train(load_config(RECIPE, settings), tmp_path / "full")
    part = train(load_config(RECIPE, [*settings, "train.steps=3"]), tmp_path / "part")
    resumed = resume(part.path, ["train.steps=6"])
    a, b = load_state(full.path), load_state(resumed.path)
    for net in ("g", "d"):
        na, nb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(na[k], nb[k]) for k in na)
    x = np.random.default_rng(0).uniform(-1, 1, (5, 64))
    assert np.array_equal(
        load_classifier(full.path).predict_proba(x), load_classifier(resumed.path).predict_proba(x)
    )
    if options:  # the exported classifier is D's average, and the average resumes exactly
        average = a["model"]["classifier_average"]
        assert all(torch.equal(average[k], b["model"]["classifier_average"][k]) for k in average)
        net = load_classifier(full.path).net.state_dict()
        assert all(torch.equal(net[k], average[k]) for k in net)
        assert not torch.equal(net["head.weight"], a["networks"]["d"]["head.weight"])
    else:
        with pytest.raises(CheckpointError, match="classifier_ema=0"):
            resume(part.path, ["train.steps=9", "model.classifier_ema=0.9"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["data.name=ring", "model.net=mlp"], "has no labels"),
        (["model.num_classes=5"], "labels lie in 0..9"),
        (["model.labels_per_class=1000"], "labels_per_class = 1000"),
        (["model.d_widths=[]"], "at least one layer"),
        (["model.input_noise=-0.1"], "input_noise"),
        (["model.classifier_ema=1"], "classifier_ema"),
        (["objective.r1=1.0"], "objective.r1 is not used"),
        (["model.net=resnet"], "model.net"),
    ],
)
def test_config_errors(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        train(load_config(RECIPE, [*TINY, *extra]), tmp_path / "run")


def test_quick_ssl_bench(tmp_path):
    """Protocol and scoring of `gankit bench ssl --quick`, never its goal."""
    import json

    from gankit.bench import run_benchmark

    result = run_benchmark("ssl", quick=True, out=tmp_path)
    rows = result["measured"]
    assert list(rows) == ["ssgan", "labelled only", "LabelSpreading", "all labels (ceiling)"]
    (draw,) = result["per_draw"]
    assert set(draw["label_spreading_kernels"]) == {"knn", "rbf"}
    assert draw["LabelSpreading"] == max(draw["label_spreading_kernels"].values()) > 0.5
    assert all(0.0 <= rows[name]["mean"] <= 1.0 for name in rows)
    assert json.loads((tmp_path / "ssl.json").read_text())["benchmark"] == "ssl"
