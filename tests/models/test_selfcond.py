"""The self-conditioned GAN (model.self_conditioned): k-means labels by hand, the prior saved and
sampled from, resume bit-identical, bad input refused."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import gankit
from gankit.config import load_config
from gankit.data.source import Dataset
from gankit.data.toy import ring_means
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.generator import resolve_labels
from gankit.modeldir import write_spec
from gankit.models.conditional import ConditionalObjective
from gankit.models.selfcond import assign, kmeans, label_by_clusters, proportions
from gankit.nets import build_discriminator
from gankit.nets.conditional import ConditionalDiscriminator
from gankit.nets.layers import Maxout
from gankit.objectives import LOSSES, Objective

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = [
    "data.name=ring",
    "data.n_samples=512",
    "model.family=cmlp",
    "model.self_conditioned=true",
    "model.num_classes=8",
    "model.g_output=none",
    "model.latent_dim=4",
    "model.g_width=8",
    "model.d_width=8",
    "train.batch_size=32",
    "train.steps=6",
    "train.progress=false",
    "train.log_every=2",
    "train.checkpoint_every=3",
    "train.sample_every=3",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    return train(load_config(None, TINY), tmp_path_factory.mktemp("sc") / "run").path


# --- k-means and the labels, by hand -------------------------------------------------------------
def test_kmeans_by_hand():
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0], [10.0, 2.0]])
    centres, labels = kmeans(x, 2, seed=0)
    left = int(labels[0])
    assert labels.tolist() == [left, left, 1 - left, 1 - left, 1 - left]
    assert torch.allclose(centres[left], torch.tensor([0.0, 0.5], dtype=torch.float64))
    assert torch.allclose(centres[1 - left], torch.tensor([10.0, 1.0], dtype=torch.float64))
    shares = proportions(labels, 2)
    assert shares[left].item() == pytest.approx(0.4) and shares.sum().item() == pytest.approx(1)
    assert assign(torch.tensor([[1.0, 0.0], [9.0, 0.0]]), centres).tolist() == [left, 1 - left]
    again = kmeans(x, 2, seed=0)
    assert torch.equal(again[0], centres) and torch.equal(again[1], labels)  # seeded


def test_each_ring_mode_is_one_cluster():
    """With K = the 8 modes of a well separated ring, every cluster is exactly one mode."""
    from gankit.data.toy import sample_ring

    x = sample_ring(800, seed=3)
    modes = assign(x, ring_means(8, 1.0).double())
    dataset = Dataset(x, None, "ring")
    clustering = label_by_clusters(dataset, 8, seed=0)
    for m in range(8):
        assert dataset.labels[modes == m].unique().numel() == 1
    assert dataset.labels.unique().numel() == 8
    assert torch.allclose(clustering.prior, proportions(dataset.labels, 8))


def test_projection_loss_on_cluster_labels_by_hand():
    """D's non-saturating loss on a batch labelled by k-means, against a hand computation."""
    x = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    _, labels = kmeans(x, 2, seed=0)
    d = ConditionalDiscriminator(nn.Identity(), 2, 2, "projection")
    with torch.no_grad():
        d.head.weight.copy_(torch.tensor([[0.5, 0.0]]))
        d.head.bias.zero_()
        d.embed.weight.copy_(torch.eye(2))
    objective = ConditionalObjective(Objective(LOSSES["non-saturating"]))
    fake = torch.zeros(2, 2)
    loss, _ = objective.discriminator_loss(d, x, fake, labels)
    # real scores: 0.5·x₁ + x[label]: point 0 → 0, point (4, 0) → 2 + (4 if its label is 0)
    real = torch.tensor([0.0, 2.0 + (4.0 if int(labels[1]) == 0 else 0.0)])
    sp = nn.functional.softplus
    expected = sp(-real).mean() + sp(torch.zeros(2)).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_kmeans_bad_input():
    with pytest.raises(ConfigError, match="only 3 samples"):
        kmeans(torch.zeros(3, 2), 4)
    with pytest.raises(DataError, match="fewer than 3 distinct"):
        kmeans(torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]), 3)
    with pytest.raises(DataError, match="NaN"):
        kmeans(torch.tensor([[0.0, float("nan")], [1.0, 1.0]]), 1)
    with pytest.raises(ConfigError, match=">= 1"):
        kmeans(torch.zeros(3, 2), 0)


def test_labels_drawn_by_the_prior():
    prior = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    assert resolve_labels(None, 5, 3, seed=0, prior=prior).tolist() == [1] * 5
    split = torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64)
    drawn = resolve_labels(None, 200, 3, seed=1, prior=split)
    assert 1 not in drawn.tolist() and torch.equal(drawn, resolve_labels(None, 200, 3, 1, split))
    assert resolve_labels(2, 3, 3, seed=0, prior=prior).tolist() == [2, 2, 2]  # given labels win


def test_maxout_discriminator_option():
    spec = {
        "family": "cmlp",
        "num_classes": 3,
        "d_width": 4,
        "d_depth": 3,
        "d_maxout_pieces": 5,
        "data_shape": [2],
    }
    d = build_discriminator(spec)
    assert sum(isinstance(m, Maxout) for m in d.modules()) == 3
    scores, logits = d(torch.zeros(6, 2), torch.zeros(6, dtype=torch.long))
    assert scores.shape == (6,) and logits is None


# --- the model: saved prior, sampling, resume, errors --------------------------------------------
def test_model_dir_has_the_cluster_prior(run):
    spec = json.loads((run / "model.json").read_text())
    prior = spec["class_prior"]
    assert len(prior) == 8 and sum(prior) == pytest.approx(1.0)
    state = load_state(run)
    centres = state["model"]["cluster_centres"]
    assert centres.shape == (8, 2)
    gen = gankit.load_generator(run)
    assert gen.num_classes == 8 and gen.sample(4, seed=0).shape == (4, 2)
    assert gen.sample(4, seed=0).equal(gen.sample(4, seed=0))


def test_sampling_follows_the_saved_prior(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    spec = json.loads((copy / "model.json").read_text())
    write_spec(copy, {**spec, "class_prior": [0.0] * 7 + [1.0]})
    gen = gankit.load_generator(copy)
    z = gen.sample_latent(6, seed=5)
    assert gen.sample(6, seed=5).equal(gen.decode(z, 7))  # every sample from cluster 7
    from gankit.serve.models import GeneratorModel

    served = GeneratorModel("sc", gen)
    assert served.labels_for(6, 5, None).tolist() == [7] * 6  # the service draws the same way
    assert served.labels_for(2, 5, 3).tolist() == [3, 3]


@pytest.mark.parametrize(
    "prior", [[0.5, 0.5], [-0.1] + [1.1 / 7] * 7, [0.2] * 8, ["a"] * 8, [True] + [0.0] * 7]
)
def test_bad_class_prior_is_refused(run, tmp_path, prior):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    spec = json.loads((copy / "model.json").read_text())
    write_spec(copy, {**spec, "class_prior": prior})
    with pytest.raises(CheckpointError, match="class_prior"):
        gankit.load_generator(copy)


def test_resume_is_bit_identical(run, tmp_path):
    part = train(load_config(None, [*TINY, "train.steps=3"]), tmp_path / "part")
    resumed = resume(part.path, ["train.steps=6"])
    a, b = load_state(run), load_state(resumed.path)
    assert torch.equal(a["model"]["cluster_centres"], b["model"]["cluster_centres"])
    for net in ("g", "d"):
        na, nb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(na[k], nb[k]) for k in na)
    assert (
        gankit.load_generator(run)
        .sample(5, seed=2)
        .equal(gankit.load_generator(resumed.path).sample(5, seed=2))
    )
    spec_a = json.loads((run / "model.json").read_text())
    spec_b = json.loads((resumed.path / "model.json").read_text())
    assert spec_a["class_prior"] == spec_b["class_prior"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["model.num_classes=1000"], "only 512 samples"),
        (["model.d_maxout_pieces=-1"], "model.d_maxout_pieces"),
    ],
)
def test_config_errors(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        train(load_config(None, [*TINY, *extra]), tmp_path / "run")


@pytest.mark.parametrize(
    "recipe",
    [
        "ring-selfcond.yaml",
        "grid-selfcond.yaml",
        "ring-selfcond-pacgan.yaml",
        "grid-selfcond-pacgan.yaml",
    ],
)
def test_recipes_load(recipe):
    cfg = load_config(CONFIGS / recipe)
    assert cfg.model.self_conditioned and cfg.model.num_classes == 100


def test_mode_coverage_layouts_load():
    from gankit.bench.images import CONFIGS as BENCH_CONFIGS
    from gankit.bench.mixture import mixture_of
    from gankit.bench.mode_coverage import LAYOUTS, layout_recipes

    sizes = {}
    for layout in LAYOUTS:
        main_row, ablation = layout_recipes(layout)
        assert main_row.config == ablation.config
        cfg = load_config(BENCH_CONFIGS / ablation.config, ablation.overrides)
        assert cfg.model.num_classes == 1 and cfg.model.self_conditioned
        sizes[layout] = len(mixture_of(cfg.data)[0])
    assert sizes == {
        "ring16": 16,
        "grid7": 49,
        "ring-pacgan-protocol": 8,
        "grid-pacgan-protocol": 25,
    }
