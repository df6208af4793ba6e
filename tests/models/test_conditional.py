"""The conditional GAN (cdcgan, cmlp): losses by hand, resume, labels honoured end to end."""

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.generator import load_generator
from gankit.metrics.conditional import conditional_accuracy
from gankit.metrics.evaluate import evaluate
from gankit.modeldir import write_spec
from gankit.models.conditional import ConditionalObjective
from gankit.nets.conditional import ConditionalBatchNorm, ConditionalDiscriminator
from gankit.objectives import LOSSES, Objective, auxiliary_class_loss

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY_CDCGAN = [
    "data.name=digits",
    "model.family=cdcgan",
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
# an MLP ACGAN that learns the classes of the digits in ~300 steps (a few seconds on one core)
LEARNS_LABELS = [
    "data.name=digits",
    "model.family=cmlp",
    "model.conditioning=acgan",
    "model.latent_dim=16",
    "model.g_width=64",
    "model.d_width=64",
    "train.batch_size=64",
    "train.steps=300",
    "train.lr_g=0.001",
    "train.lr_d=0.001",
    "train.progress=false",
    "train.log_every=100",
    "train.checkpoint_every=300",
    "train.sample_every=300",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A conditional generator trained once for this module (about 3 s)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cgan") / "digits-acgan"
    train(load_config(None, LEARNS_LABELS), out)
    return out


# --- the pieces, against values computed by hand -----------------------------------------------
def test_conditional_batch_norm_by_hand():
    cbn = ConditionalBatchNorm(1, 2, dims=1)
    with torch.no_grad():
        cbn.scale.weight.copy_(torch.tensor([[2.0], [3.0]]))
        cbn.shift.weight.copy_(torch.tensor([[0.5], [-1.0]]))
    # batch mean 2, biased variance 1: x̂ = [-1, 1]; then γ_y x̂ + β_y per sample
    out = cbn(torch.tensor([[1.0], [3.0]]), torch.tensor([0, 1]))
    assert torch.allclose(out.squeeze(1), torch.tensor([-1.5, 2.0]), atol=1e-4)


def _discriminator(conditioning: str) -> ConditionalDiscriminator:
    d = ConditionalDiscriminator(nn.Identity(), 2, 2, conditioning)
    with torch.no_grad():
        d.head.weight.copy_(torch.tensor([[1.0, -1.0]]))
        d.head.bias.fill_(0.5)
        if conditioning == "projection":
            d.embed.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        else:
            d.classifier.weight.copy_(torch.eye(2))
            d.classifier.bias.zero_()
        if conditioning == "tac":
            d.twin.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
            d.twin.bias.fill_(1.0)
    return d


def test_projection_and_acgan_heads_by_hand():
    x, y = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0, 1])
    # ψ(φ) = x₁ - x₂ + 0.5 = -0.5 for both; projection adds ⟨e_y, φ⟩ = 2·1 and 1·4
    scores, logits = _discriminator("projection")(x, y)
    assert logits is None
    assert torch.allclose(scores, torch.tensor([1.5, 3.5]))
    scores, logits = _discriminator("acgan")(x, y)
    assert torch.allclose(scores, torch.tensor([-0.5, -0.5]))
    assert torch.equal(logits, x)  # identity classifier
    # tac: the same score; the classifier's logits, then the twin's (swapped inputs + 1)
    scores, logits = _discriminator("tac")(x, y)
    assert torch.allclose(scores, torch.tensor([-0.5, -0.5]))
    assert torch.equal(logits, torch.tensor([[1.0, 2.0, 3.0, 2.0], [3.0, 4.0, 5.0, 4.0]]))


class Fixed(nn.Module):
    """A D that answers fixed scores and class logits: the real ones for inputs of ones."""

    def __init__(self, real, fake, real_logits=None, fake_logits=None):
        super().__init__()
        self.real, self.fake = (real, real_logits), (fake, fake_logits)

    def forward(self, x, labels):
        return self.real if bool(x.sum() > 0) else self.fake


REAL, FAKE = torch.tensor([1.0, -1.0]), torch.tensor([0.0, 2.0])
LABELS = torch.tensor([1, 0])
LN3 = math.log(3.0)
REAL_LOGITS = torch.tensor([[0.0, LN3], [0.0, 0.0]])  # CE: -ln(3/4), ln 2
FAKE_LOGITS = torch.tensor([[LN3, 0.0], [0.0, 0.0]])  # CE: ln 4, ln 2


def _losses(
    loss: str, d: nn.Module, class_weight: float = 1.0, twin: bool = False
) -> tuple[float, float]:
    objective = ConditionalObjective(Objective(LOSSES[loss]), class_weight, twin)
    real, fake = torch.ones(2, 1), torch.zeros(2, 1)
    loss_d, _ = objective.discriminator_loss(d, real, fake, LABELS)
    return float(loss_d), float(objective.generator_loss(d, fake, LABELS))


def test_auxiliary_class_loss_by_hand():
    assert float(auxiliary_class_loss(REAL_LOGITS, LABELS)) == pytest.approx(0.49041463)
    assert float(auxiliary_class_loss(FAKE_LOGITS, LABELS)) == pytest.approx(1.03972077)


def test_projection_losses_by_hand():
    # D: mean softplus(-real) + mean softplus(fake)
    #   = (softplus(-1) + softplus(1))/2 + (softplus(0) + softplus(2))/2 = 0.81326169 + 1.41003759
    # G (non-saturating): mean softplus(-fake) = (softplus(0) + softplus(-2))/2
    loss_d, loss_g = _losses("non-saturating", Fixed(REAL, FAKE))
    assert loss_d == pytest.approx(2.22329928)
    assert loss_g == pytest.approx(0.41003759)
    # hinge: mean relu(1 - real) + mean relu(1 + fake) = (0 + 2)/2 + (1 + 3)/2; G: -mean fake
    loss_d, loss_g = _losses("hinge", Fixed(REAL, FAKE))
    assert loss_d == pytest.approx(3.0)
    assert loss_g == pytest.approx(-1.0)


def test_acgan_losses_by_hand():
    # D adds w·(CE(real logits) + CE(fake logits)) = 0.5·(0.49041463 + 1.03972077);
    # G adds w·CE(fake logits) = 0.5·1.03972077
    d = Fixed(REAL, FAKE, REAL_LOGITS, FAKE_LOGITS)
    loss_d, loss_g = _losses("non-saturating", d, class_weight=0.5)
    assert loss_d == pytest.approx(2.22329928 + 0.76506770)
    assert loss_g == pytest.approx(0.41003759 + 0.51986039)


def test_tac_losses_by_hand():
    # D's logits are [classifier | twin]. On real digits only the classifier counts, on fakes D
    # learns only the twin: D adds w·(CE(real: REAL_LOGITS) + CE(fake twin: REAL_LOGITS)).
    # G adds w·(CE(fake classifier: FAKE_LOGITS) - CE(fake twin: REAL_LOGITS)) = w·ln(3)/2.
    real_logits = torch.cat([REAL_LOGITS, FAKE_LOGITS], 1)  # the twin's half is never read
    fake_logits = torch.cat([FAKE_LOGITS, REAL_LOGITS], 1)
    d = Fixed(REAL, FAKE, real_logits, fake_logits)
    loss_d, loss_g = _losses("non-saturating", d, class_weight=0.5, twin=True)
    assert loss_d == pytest.approx(2.22329928 + 0.5 * 2 * 0.49041463)
    assert loss_g == pytest.approx(0.41003759 + 0.5 * (1.03972077 - 0.49041463))
    objective = ConditionalObjective(Objective(LOSSES["non-saturating"]), 0.5, twin=True)
    _, stats = objective.discriminator_loss(d, torch.ones(2, 1), torch.zeros(2, 1), LABELS)
    assert stats["d_class"] == pytest.approx(2 * 0.49041463)
    assert stats["d_class_acc"] == 1.0 and stats["d_twin_acc"] == 1.0


def test_tac_generator_ascends_the_twin_loss():
    # G's gradient through the twin's logits is minus the cross-entropy's: it pushes the twin's
    # logit of the requested class down (softmax - onehot, negated, / n)
    logits = torch.zeros(1, 4, requires_grad=True)  # [classifier | twin], K = 2
    d = Fixed(torch.zeros(1), torch.zeros(1), logits, logits)
    objective = ConditionalObjective(Objective(LOSSES["non-saturating"]), 1.0, twin=True)
    objective.generator_loss(d, torch.zeros(1, 1), torch.tensor([0])).backward()
    assert torch.allclose(logits.grad, torch.tensor([[-0.5, 0.5, 0.5, -0.5]]))


# --- the engine: labels in batches, recipes, resume -----------------------------------------------
@pytest.mark.parametrize(
    ("data", "classes"),
    [(["data.name=digits"], 10), (["data.name=stacked-digits", "data.n_samples=64"], 1000)],
)
def test_batches_carry_the_dataset_labels(data, classes):
    from gankit.data.source import TensorBatches, load_dataset

    dataset = load_dataset(load_config(None, data).data)
    batches = TensorBatches(dataset, 16, seed=3)
    batch = batches.batch(5)
    idx = batches.sampler.indices(5)
    assert batch.labels is not None and torch.equal(batch.labels, dataset.labels[idx])
    assert batch.labels.dtype == torch.int64 and int(batch.labels.min()) >= 0
    assert int(dataset.labels.max()) < classes


@pytest.mark.parametrize("recipe", ["digits-cgan.yaml", "digits-acgan.yaml", "digits-tacgan.yaml"])
def test_recipes_load(recipe):
    cfg = load_config(CONFIGS / recipe)
    assert cfg.model.family == "cdcgan" and cfg.model.num_classes == 10


@pytest.mark.parametrize("conditioning", ["acgan", "tac"])
def test_resume_is_bit_identical(tmp_path, conditioning):
    settings = (f"model.conditioning={conditioning}", "objective.r1=1.0", "train.ema=0.9")
    full = train(load_config(None, [*TINY_CDCGAN, *settings]), tmp_path / "full")
    part = train(load_config(None, [*TINY_CDCGAN, *settings, "train.steps=3"]), tmp_path / "part")
    resumed = resume(part.path, ["train.steps=6"])
    a, b = load_state(full.path), load_state(resumed.path)
    assert ("twin.weight" in a["networks"]["d"]) == (conditioning == "tac")  # the twin head
    for net in ("g", "d"):
        na, nb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(na[k], nb[k]) for k in na)
    assert (
        gankit.load_generator(full.path)
        .sample(4, seed=1, labels=2)
        .equal(gankit.load_generator(resumed.path).sample(4, seed=1, labels=2))
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["data.name=ring", "model.family=cmlp"], "has no labels"),
        (["model.num_classes=5"], "set model.num_classes = 10"),
        (["model.num_classes=1000000000000"], "too large"),
        (["model.conditioning=both"], "model.conditioning"),
        (["model.conditioning=tacgan"], "projection, acgan, tac"),
        (["model.conditioning=tac", "model.class_weight=-1"], "model.class_weight"),
        (["objective.unroll_steps=2"], "unrolled"),
    ],
)
def test_config_errors(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        train(load_config(None, [*TINY_CDCGAN, *extra]), tmp_path / "run")


# --- labels honoured: library, metric, CLI, service, ONNX --------------------------------------
def test_samples_are_classified_as_their_label(trained):
    gen = load_generator(trained)
    assert gen.num_classes == 10 and gen.spec["num_classes"] == 10
    record = conditional_accuracy(gen, n_per_class=30, seed=0)
    assert record.value > 0.5  # chance is 0.1
    assert len(record.details["per_class"]) == 10 and record.extractor == "digits-classifier"
    scores = evaluate(trained, ["conditional_accuracy", "cas", "intra_fd"], n=200, write=False)
    assert scores["conditional_accuracy"]["n_fake"] == 200
    assert 0.0 <= scores["cas"]["value"] <= 1.0 and scores["cas"]["details"]["train_on_real"] > 0.8
    intra = scores["intra_fd"]
    assert len(intra["details"]["per_class"]) == 10
    assert intra["details"]["floor"] == pytest.approx(1.5346, abs=1e-3)  # real held-out vs train


def test_sample_labels_are_validated(trained):
    gen = load_generator(trained)
    assert gen.sample(3, seed=0, labels=4).shape == (3, 1, 8, 8)
    same = gen.sample(3, seed=0, labels=[4, 4, 4])
    assert same.equal(gen.sample(3, seed=0, labels=torch.tensor([4, 4, 4])))
    assert gen.sample(3, seed=0).equal(gen.sample(3, seed=0))  # classes drawn with the seed
    grid = gen.class_grid(per_class=2, seed=0)
    assert grid.shape == (20, 1, 8, 8)
    for bad, message in [
        (10, r"0\.\.9"),
        (-1, r"0\.\.9"),
        ([0, 1], "expected one label or 3 labels"),
        (1.5, "integer"),
        ("3", "integer"),
        (True, "integer"),
        ([[1, 2, 3]], "flat list"),
    ]:
        with pytest.raises(DataError, match=message):
            gen.sample(3, seed=0, labels=bad)
    with pytest.raises(DataError, match="pass labels"):
        gen.decode(torch.zeros(2, gen.latent_dim))
    with pytest.raises(ConfigError, match="class-conditional"):
        gen.sample(3, rejection=True)


def test_unconditional_generator_refuses_labels(tmp_path):
    from gankit.bench.serve import make_generator_dir

    gen = load_generator(make_generator_dir(tmp_path / "plain", width=8, latent_dim=8))
    assert gen.num_classes is None
    with pytest.raises(DataError, match="not class-conditional"):
        gen.sample(2, labels=1)
    with pytest.raises(ConfigError, match="class-conditional"):
        gen.class_grid()


def test_spec_num_classes_must_match_the_architecture(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    spec = json.loads((copy / "model.json").read_text())
    write_spec(copy, {**spec, "num_classes": 7})
    with pytest.raises(CheckpointError, match="num_classes"):
        load_generator(copy)


def test_cli_sample_labels_and_class_grid(trained, tmp_path, capsys):
    from PIL import Image

    assert (
        main(
            ["sample", str(trained), "--labels", "3", "--n", "4", "--out", str(tmp_path / "a.png")]
        )
        == 0
    )
    out = tmp_path / "grid.png"
    assert main(["sample", str(trained), "--class-grid", "--per-row", "5", "--out", str(out)]) == 0
    width, height = Image.open(out).size
    assert height > width  # 10 rows of 5
    assert main(["sample", str(trained), "--labels", "0,1,2", "--n", "6", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["sample", str(trained), "--labels", "12", "--out", str(out)]) == 2
    assert main(["sample", str(trained), "--labels", "one", "--out", str(out)]) == 2
    assert "--labels 'one'" in capsys.readouterr().err


def test_generate_endpoint_with_labels(trained):
    from fastapi.testclient import TestClient

    from gankit.serve import ServeOptions, create_app

    gen = load_generator(trained)
    app = create_app([trained], options=ServeOptions(insecure_no_auth=True))
    with TestClient(app) as client:
        body = {"model": trained.name, "n": 3, "seed": 5, "labels": 7}
        reply = client.post("/v1/generate", json=body)
        assert reply.status_code == 200, reply.text
        assert reply.json()["labels"] == [7, 7, 7]
        expected = gen.sample(3, seed=5, labels=7).numpy()
        assert torch.allclose(
            torch.tensor(reply.json()["data"]), torch.from_numpy(expected), atol=1e-5
        )
        for labels in (10, [1, 2], -1):
            reply = client.post("/v1/generate", json={**body, "labels": labels})
            assert reply.status_code == 422, labels
        info = client.get(f"/v1/models/{trained.name}").json()
        assert info["num_classes"] == 10


def test_onnx_export_takes_labels(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    from gankit.export import export_model, ort_session

    out = tmp_path / "exported"
    report = export_model(trained, out, exporter="torchscript")
    assert report["parity_max_abs"] <= 1e-4
    spec = json.loads((out / "model.json").read_text())
    assert spec["onnx"]["inputs"] == ["z", "labels"]
    gen = load_generator(out)
    z = gen.sample_latent(4, seed=0)
    labels = torch.tensor([0, 3, 3, 9])
    got = ort_session(out / "model.onnx").run(None, {"z": z.numpy(), "labels": labels.numpy()})[0]
    assert torch.allclose(torch.from_numpy(got), gen.decode(z, labels), atol=1e-4)


def test_quick_conditional_bench(tmp_path):
    """Protocol and scoring of `gankit bench conditional --quick`, never its targets."""
    from gankit.bench import run_benchmark

    result = run_benchmark("conditional", quick=True, out=tmp_path)
    rows = result["measured"]
    assert list(rows) == ["held-out real (floor)", "projection", "acgan", "tac", "biggan"]
    floor = rows["held-out real (floor)"]
    assert floor["fd"]["mean"] == pytest.approx(0.250, abs=0.005)  # docs/benchmarks.md floor
    assert floor["conditional_accuracy"]["mean"] > 0.95 and floor["cas"]["mean"] > 0.9
    assert floor["intra_fd"]["mean"] == pytest.approx(1.5346, abs=1e-3)
    for name in ("projection", "acgan", "tac", "biggan"):
        (seed,) = rows[name]["per_seed"]
        assert len(seed["per_class_accuracy"]) == 10 and 0 <= seed["cas"] <= 1
        assert 0 <= seed["precision"] <= 1 and 0 <= seed["recall"] <= 1
    sweep = result["truncation_sweep"]["biggan"]  # BigGAN's truncation sweep, every threshold
    assert list(sweep) == ["0.5", "1", "1.5", "2", "none"]
    assert sweep["none"]["fd"]["mean"] == pytest.approx(rows["biggan"]["fd"]["mean"])
    assert json.loads((tmp_path / "conditional.json").read_text())["benchmark"] == "conditional"


def test_report_has_a_class_grid(trained):
    from gankit.report import _image_sections

    gen = load_generator(trained)
    fake = gen.sample(16, seed=0)
    titles = [title for title, _ in _image_sections(trained, gen, fake, None, "")]
    assert titles[:2] == ["Samples", "Samples by class"]
