"""The quality benchmarks' quick modes run, and their scoring is right on known inputs."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.bench import BENCHMARKS
from gankit.bench.mixture import N_SAMPLES, summarise
from gankit.data.stacked import stacked_digits
from gankit.data.toy import grid_means, sample_mixture


def test_quality_benchmarks_are_registered() -> None:
    for name in ("ring", "grid", "stacked-digits", "digits"):
        assert name in BENCHMARKS


def test_ring_quick_runs_and_scores_real_samples_at_the_ceiling(tmp_path) -> None:
    from gankit.bench import ring

    result = ring.run(quick=True, seeds=1, plot_dir=str(tmp_path))
    real = result["measured"]["real samples"]
    assert real["modes"]["mean"] == 8
    # P(chi2_2 < 9) = 98.89 %; 2,500 draws: s.e. ≈ 0.2 %
    assert abs(real["hq_percent"]["mean"] - 98.89) < 1.0
    assert real["reverse_kl"]["mean"] < 0.01
    assert result["protocol"]["samples"] == N_SAMPLES == 2500
    ablation = "best recipe without rejection (ablation)"
    for name in ("plain GAN (VEEGAN protocol)", "best recipe", ablation):
        row = result["measured"][name]["per_seed"][0]
        assert sum(row["hq_counts"]) == round(row["hq_percent"] * 25)
        # closed form: a histogram on m of K bins is at least log(K/m) nats from uniform
        assert row["reverse_kl"] >= math.log(8 / row["modes"]) - 1e-12
    # the best recipe samples by discriminator rejection (its acceptance is checked against
    # closed forms in test_rejection.py); its ablation row is the same model, sampled directly
    assert "acceptance" in result["measured"]["best recipe"]["per_seed"][0]
    assert "acceptance" not in result["measured"][ablation]["per_seed"][0]
    assert "rejection" in result["measured"]["best recipe"]["source"]
    assert "GDPP-GAN" in result["table"] and "8.0 / 71.7" in result["table"]
    assert len(list(tmp_path.glob("ring-*.png"))) == 5  # + self-conditioned and its ablation


def test_cli_grid_quick_writes_json_and_plots(tmp_path) -> None:
    import json

    from gankit.cli import main

    plots = tmp_path / "plots"
    args = ["bench", "grid", "--quick", "--out", str(tmp_path), "--plots", str(plots)]
    assert main(args) == 0
    result = json.loads((tmp_path / "grid.json").read_text())
    assert result["protocol"]["modes"] == 25 and "best recipe" in result["measured"]
    assert len(list(plots.glob("grid-*.png"))) == 5


def test_grid_scoring_of_a_collapsed_and_a_perfect_sampler() -> None:
    from gankit.bench.mixture import _score

    means = grid_means()
    perfect = _score(sample_mixture(means, 2500, 0.05, seed=1), means, 0.05)
    assert perfect["modes"] == 25
    collapsed = _score(means[3].repeat(2500, 1), means, 0.05)
    assert collapsed["modes"] == 1 and collapsed["hq_percent"] == 100.0
    assert collapsed["reverse_kl"] == pytest.approx(math.log(25))
    far = _score(torch.full((2500, 2), 1.0), means, 0.05)  # between modes: nothing counts
    assert far["modes"] == 0 and far["hq_percent"] == 0.0
    summary = summarise([perfect, collapsed])
    assert summary["modes"]["mean"] == 13 and summary["modes"]["se"] == pytest.approx(12)


def test_stacked_digits_quick_and_noise_floor() -> None:
    from gankit.bench import stacked_digits as bench

    floor = bench.noise_floor(26_000)
    assert floor["modes"] >= 995 and floor["kl"] < 0.04  # research notes: 1,000 / 0.020
    one = bench.score(stacked_digits(1, split="test")[0].repeat(2600, 1, 1, 1))
    assert one["modes"] == 1 and one["kl"] == pytest.approx(math.log(1000))
    result = bench.run(quick=True, seeds=1)
    assert set(result["measured"]) == {
        "real stacks (noise floor)",
        "plain DCGAN",
        "best recipe",
        "best recipe without rejection (ablation)",
    }
    for row in result["measured"].values():
        for seed in row["per_seed"]:  # KL(p̂ ‖ U_1000) >= log(1000 / modes) for m occupied bins
            assert seed["kl"] >= math.log(1000 / seed["modes"]) - 1e-12


def test_digits_quick_and_floor_memorisation() -> None:
    from gankit.bench import digits as bench
    from gankit.data import load_digits

    real, _ = load_digits("train")
    held, _ = load_digits("test")
    copies = bench.score(real[:360], real, held)
    assert copies["copy_fraction"] == 1.0 and copies["exact_copies"] == 360
    result = bench.run(quick=True, seeds=1)
    floor = result["measured"]["held-out real (floor)"]
    assert floor["copy_fraction"]["mean"] == pytest.approx(0.01, abs=0.005)
    assert floor["distance_ratio"]["mean"] == 1.0
    assert "best recipe" in result["measured"] and "digits-FD" in result["table"]
    assert "acceptance" in result["measured"]["best recipe"]["per_seed"][0]


def test_vae_quick_run_scores_the_vae_and_the_linear_baselines() -> None:
    from gankit.bench import vae

    result = vae.run(quick=True)
    summary = result["summary"]
    assert {"vae_iwae_nats", "vae_elbo_nats", "ppca_nats", "fa_nats", "sample_fd"} <= set(summary)
    # same seed and images: the k = 50 bound sits above the single-sample ELBO on average
    assert summary["vae_iwae_nats"]["mean"] > summary["vae_elbo_nats"]["mean"]
    assert result["protocol"]["iwae_k"] == 50 and "factor analysis" in result["table"]
