"""Discriminator rejection sampling and the LR decay schedule: oracles and refusals."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.engine import train
from gankit.engine.callbacks import lr_scale
from gankit.errors import ConfigError, DataError
from gankit.generator import load_generator
from gankit.rejection import RejectionSampler, check_rejection_support


def test_known_density_ratio_turns_n01_into_n11() -> None:
    """G = identity on N(0, 1), logit = log N(x; 1, 1) − log N(x; 0, 1) = x − ½ → N(1, 1)."""
    sampler = RejectionSampler(lambda z: z, lambda x: x[:, 0] - 0.5, latent_dim=1)
    kept = sampler.sample(40_000, seed=0)[:, 0]
    assert kept.shape == (40_000,)
    # standard error of the mean is 0.005; the clipped tail beyond the calibration max is ~1e-4
    assert abs(float(kept.mean()) - 1.0) < 0.03
    assert abs(float(kept.std()) - 1.0) < 0.03
    # acceptance = E_N(0,1)[exp(x − ½ − M)] = exp(−M): the closed form, within sampling error
    assert sampler.acceptance == pytest.approx(math.exp(-(sampler.ceiling - 0.5) - 0.5), rel=0.1)


def test_quantile_caps_the_ratio_with_the_closed_form_acceptance() -> None:
    """logit = x on N(0, 1), M = the median: keep x > 0 always, x < 0 with probability e^x.

    Acceptance = ½ + E[e^x; x < 0] = ½ + e^½ Φ(−1) = 0.7616.
    """
    sampler = RejectionSampler(lambda z: z, lambda x: x[:, 0], latent_dim=1, quantile=0.5)
    sampler.sample(20_000, seed=1)
    assert abs(sampler.ceiling) < 0.05
    phi = 0.5 * math.erfc(1 / math.sqrt(2))
    assert sampler.acceptance == pytest.approx(0.5 + math.exp(0.5) * phi, abs=0.015)
    with pytest.raises(ConfigError, match="quantile"):
        RejectionSampler(lambda z: z, lambda x: x[:, 0], latent_dim=1, quantile=0.0)


def test_same_seed_same_samples() -> None:
    def make():
        return RejectionSampler(lambda z: z, lambda x: -x.square().sum(1), latent_dim=2)

    torch.testing.assert_close(make().sample(500, seed=3), make().sample(500, seed=3))


def test_a_discriminator_that_rejects_everything_is_reported() -> None:
    logits = iter([torch.full((2000,), 50.0)] + [torch.full((2000,), -50.0)] * 1000)
    sampler = RejectionSampler(lambda z: z, lambda x: next(logits), latent_dim=1, calibration=2000)
    with pytest.raises(DataError, match="rejects almost everything"):
        sampler.sample(10)


@pytest.mark.parametrize(
    ("loss", "pack", "match"),
    [("wasserstein", 1, "log p_data/p_G"), ("hinge", 1, "hinge"), ("non-saturating", 0, "pack")],
)
def test_models_without_a_density_ratio_are_refused(loss, pack, match) -> None:
    with pytest.raises(ConfigError, match=match):
        check_rejection_support(loss, pack)


def test_packed_discriminator_drives_rejection_with_the_closed_form_target() -> None:
    """PacGAN: the optimal D of packs of 3 has logit Σ_i log r(x_i) (i.i.d. samples). With
    G = identity on N(0, 1) and log r(x) = x − ½, scoring each draw packed with fixed context
    draws must still turn N(0, 1) into N(1, 1): the context adds the same constant to every
    candidate's score."""
    pack = 3

    def packed_d(x: torch.Tensor) -> torch.Tensor:  # [B * pack, 1] -> [B], like PackedD
        return (x.reshape(-1, pack) - 0.5).sum(1)

    sampler = RejectionSampler(lambda z: z, packed_d, latent_dim=1, pack=pack)
    kept = sampler.sample(40_000, seed=0)[:, 0]
    assert abs(float(kept.mean()) - 1.0) < 0.03
    assert abs(float(kept.std()) - 1.0) < 0.03
    assert sampler.context is not None and sampler.context.shape == (4, pack - 1, 1)


def _top_percent_sampler(**options) -> RejectionSampler:
    """logit 0 on the top 1 % of N(0, 1) (x > 2.3263), −10 elsewhere; M = 0, so the
    acceptance is 0.01 + 0.99 e^−10 = 0.010045 in closed form."""
    return RejectionSampler(
        lambda z: z,
        lambda x: torch.where(x[:, 0] > 2.3263, 0.0, -10.0),
        latent_dim=1,
        calibration=50_000,
        **options,
    )


ACCEPTANCE = 0.01 + 0.99 * math.exp(-10)


def test_cost_is_estimated_before_sampling_and_the_floor_is_adjustable() -> None:
    estimates = []
    sampler = _top_percent_sampler(min_acceptance=1e-3)
    sampler.sample(500, seed=0, on_estimate=estimates.append)
    (estimate,) = estimates
    # binomial standard error of the calibration's estimate: sqrt(0.01 · 0.99 / 50000) = 4.5e-4
    assert estimate.acceptance == pytest.approx(ACCEPTANCE, abs=1.5e-3)
    assert estimate.draws == pytest.approx(500 / ACCEPTANCE, rel=0.15)
    assert "500 samples need at least" in estimate.describe()  # quantile 1: M may grow
    assert sampler.acceptance == pytest.approx(ACCEPTANCE, rel=0.2)  # 500 kept: ~9 % error


def test_floor_refuses_before_the_long_part_with_the_estimate() -> None:
    draws = []
    sampler = _top_percent_sampler(min_acceptance=0.05)
    generate = sampler.generate
    sampler.generate = lambda z: draws.append(len(z)) or generate(z)
    with pytest.raises(
        DataError, match=r"calibration keeps 0\.0\d+ of draws.*min_acceptance 5e-02"
    ):
        sampler.sample(1000, seed=0)
    assert sum(draws) == 50_000  # the calibration only: nothing drawn after the estimate


def test_progress_bar_for_long_sampling(monkeypatch, capsys) -> None:
    import gankit.rejection

    monkeypatch.setattr(gankit.rejection, "PROGRESS_AFTER_SECONDS", 0.0)
    _top_percent_sampler().sample(200, seed=0, progress=True)
    assert "rejection sampling" in capsys.readouterr().err
    monkeypatch.setattr(gankit.rejection, "PROGRESS_AFTER_SECONDS", 1e9)  # short: no bar
    _top_percent_sampler().sample(200, seed=0, progress=True)
    assert capsys.readouterr().err == ""


def test_saved_pacgan_model_samples_by_rejection(tmp_path) -> None:
    from tests.test_modeldir import save_toy_generator

    save_toy_generator(tmp_path, pack=4)
    gen = load_generator(tmp_path)
    a = gen.sample(300, seed=1, rejection=True)
    assert a.shape == (300, 2)
    torch.testing.assert_close(a, load_generator(tmp_path).sample(300, seed=1, rejection=True))


def test_trained_model_saves_its_discriminator_and_samples_by_rejection(tmp_path, toy_config):
    run = train(toy_config(), tmp_path / "run")
    gen = load_generator(run.path)
    assert gen.discriminator is not None
    a = gen.sample(300, seed=1, rejection=True)
    assert a.shape == (300, 2)
    torch.testing.assert_close(a, load_generator(run.path).sample(300, seed=1, rejection=True))
    # the reported acceptance agrees with an independent Monte Carlo estimate from D's logits on
    # fresh draws, E[min(1, exp(D(x) − M))] at the final M (300 of ≥ 2,000 draws kept: the
    # binomial s.e. is ≤ 0.011; M only grew during sampling, so allow a little more)
    sampler = gen.rejection_sampler()
    with torch.no_grad():
        z = torch.randn(20_000, gen.latent_dim, generator=torch.Generator().manual_seed(9))
        x = gen.module(z)
        logits = gen.discriminator(x).reshape(-1).double()
    expected = float(torch.exp(logits - sampler.ceiling).clamp(max=1.0).mean())
    assert sampler.acceptance == pytest.approx(expected, abs=0.06)
    with pytest.raises(DataError, match="neither truncation"):
        gen.sample(10, truncation=1.0, rejection=True)


def test_wasserstein_model_refuses_rejection(tmp_path, toy_config):
    run = train(
        toy_config("objective.loss=wasserstein", "objective.gradient_penalty=10"),
        tmp_path / "run",
    )
    with pytest.raises(ConfigError, match="wasserstein"):
        load_generator(run.path).sample(10, rejection=True)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [("none", [1, 1, 1]), ("linear", [1, 0.5, 0]), ("cosine", [1, 0.5, 0])],
)
def test_lr_scale_closed_forms(schedule, expected) -> None:
    got = [lr_scale(schedule, step, 20) for step in (0, 10, 20)]
    assert got == pytest.approx(expected, abs=1e-12)


def test_linear_decay_follows_the_schedule_to_zero(tmp_path, toy_config):
    """The LR after step s of 20 is lr · (1 − s/20), for both players."""
    from gankit.engine.runs import build_trainer

    cfg = toy_config("train.lr_decay=linear", "train.lr_g=0.002", "train.lr_d=0.001")
    trainer = build_trainer(cfg, tmp_path / "run")
    seen: list[tuple[float, float]] = []

    class Record:
        def on_step(self, t, stats):
            seen.append((t.optimizers["g"].param_groups[0]["lr"], t.rates.current("d")))

        def on_end(self, t):
            pass

    callbacks = trainer.callbacks
    trainer.callbacks = lambda: [*callbacks(), Record()]
    trainer.fit()
    assert len(seen) == 20
    for step, (lr_g, lr_d) in enumerate(seen, start=1):
        assert lr_g == pytest.approx(0.002 * (1 - step / 20))
        assert lr_d == pytest.approx(0.001 * (1 - step / 20))


def test_model_without_discriminator_weights_refuses_rejection(tmp_path, toy_config):
    from safetensors.torch import load_file

    from gankit.modeldir import read_spec, write_model_dir

    run = train(toy_config(), tmp_path / "run")
    weights = load_file(run.path / "model.safetensors")
    generator_only = {k: v for k, v in weights.items() if not k.startswith("discriminator.")}
    spec = {k: v for k, v in read_spec(run.path).items() if k not in ("format", "weights_sha256")}
    write_model_dir(tmp_path / "g-only", generator_only, spec)
    gen = load_generator(tmp_path / "g-only")
    assert gen.discriminator is None and gen.sample(5, seed=0).shape == (5, 2)
    with pytest.raises(ConfigError, match="no discriminator weights"):
        gen.sample(5, rejection=True)


def test_grid_like_acceptance_is_refused_by_default_and_sampled_with_a_lower_floor() -> None:
    """Acceptance 1e-4, like grid-best seed 2 (1.1e-4, docs/benchmarks/grid.json): logit 0 on
    the top 1e-4 of N(0, 1) (x > 3.719), −30 elsewhere. The default floor of 1e-3 refuses at
    once; --min-acceptance 1e-5 samples it, and every kept draw lies in the top region."""

    def make(floor: float) -> RejectionSampler:
        return RejectionSampler(
            lambda z: z,
            lambda x: torch.where(x[:, 0] > 3.719, 0.0, -30.0),
            latent_dim=1,
            calibration=200_000,
            batch_size=20_000,
            min_acceptance=floor,
        )

    with pytest.raises(DataError, match="min_acceptance 1e-03"):
        make(1e-3).sample(20, seed=0)
    sampler = make(1e-5)
    kept = sampler.sample(20, seed=0)
    assert bool((kept[:, 0] > 3.719).all())
    # P(Z > 3.719) = 1.0003e-4; ~20 of ~200k draws kept: s.e. ≈ 22 %
    assert sampler.acceptance == pytest.approx(1.0003e-4, rel=0.7)
