"""MSGAN's mode-seeking term on the self-conditioned GAN (model.mode_seeking): the term and the
paired labels by hand, the step's loss, resume bit-identical, bad configs refused, the digits
recipes load."""

from pathlib import Path

import pytest
import torch

from gankit.config import load_config
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.engine.runs import build_trainer
from gankit.errors import ConfigError
from gankit.models.selfcond import MS_EPS, mode_seeking_term, paired_labels

from .test_selfcond import CONFIGS
from .test_selfcond import TINY as SELFCOND_TINY

TINY = [*SELFCOND_TINY, "model.mode_seeking=1.0"]  # the self-conditioned tiny run, with MSGAN


def test_mode_seeking_term_by_hand():
    # pairs (0, 1) and (2, 2): mean |Δimage| = (1 + 0) / 2; noises (0, 1) and (0, 2): 1.5
    fake = torch.tensor([[0.0], [2.0], [1.0], [2.0]])
    z = torch.tensor([[0.0], [0.0], [1.0], [2.0]])
    assert mode_seeking_term(fake, z).item() == pytest.approx(1 / (0.5 / 1.5 + MS_EPS))
    same = torch.ones(4, 3)  # two noises, one image: the term is at its ceiling 1 / ε
    assert mode_seeking_term(same, torch.randn(4, 2)).item() == pytest.approx(1 / MS_EPS)
    with pytest.raises(ConfigError, match="at least 2"):
        mode_seeking_term(torch.zeros(1, 2), torch.zeros(1, 2))


def test_paired_labels_by_hand():
    labels = torch.tensor([3, 1, 4, 1, 5])
    assert paired_labels(labels).tolist() == [3, 1, 3, 1, 5]  # odd: the last one stays
    assert labels.tolist() == [3, 1, 4, 1, 5]  # not modified in place
    assert paired_labels(torch.tensor([7, 2])).tolist() == [7, 7]


def _first_step(tmp_path: Path, weight: float) -> dict[str, float]:
    torch.manual_seed(0)
    cfg = load_config(None, [*TINY, f"model.mode_seeking={weight}"])
    trainer = build_trainer(cfg, tmp_path / f"w{weight}")
    return trainer.run_step()


def test_step_adds_lambda_times_the_term(tmp_path):
    """Same seed, λ = 1 and λ = 3: same D step, same noise and pairs, so G's losses differ by
    exactly 2 × the term (which both steps report identically)."""
    one, three = _first_step(tmp_path, 1.0), _first_step(tmp_path, 3.0)
    assert one["loss_d"] == three["loss_d"]
    assert one["mode_seeking"] == pytest.approx(three["mode_seeking"], rel=1e-6)
    gap = three["loss_g"] - one["loss_g"]
    assert gap == pytest.approx(2 * one["mode_seeking"], rel=1e-4)


def test_resume_is_bit_identical(tmp_path):
    torch.set_num_threads(1)
    full = train(load_config(None, TINY), tmp_path / "full")
    part = train(load_config(None, [*TINY, "train.steps=3"]), tmp_path / "part")
    resumed = resume(part.path, ["train.steps=6"])
    a, b = load_state(full.path), load_state(resumed.path)
    for net in ("g", "d"):
        na, nb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(na[k], nb[k]) for k in na)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["model.self_conditioned=false"], "self-conditioned GAN only"),
        (["model.mode_seeking=-1"], "model.mode_seeking"),
    ],
)
def test_config_errors(extra, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [*TINY, *extra])


def test_digits_recipes_load():
    recipes = sorted(CONFIGS.glob("digits-selfcond*.yaml"))
    assert recipes
    for path in recipes:
        cfg = load_config(path)
        assert cfg.model.family == "cdcgan" and cfg.model.self_conditioned
        assert cfg.data.name == "digits" and cfg.model.conditioning == "projection"
