"""Oracle tests: our metrics against torchmetrics, prdc, scipy and closed forms (offline, f64)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from gankit.errors import DataError
from gankit.metrics import (
    FeatureStats,
    density_coverage,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    mixture_modes,
    parzen_log_likelihood,
    parzen_window,
    prdc,
    precision_recall,
    stacked_modes,
)
from gankit.metrics.kid import mmd2_unbiased
from gankit.metrics.memorization import memorization, nearest_neighbours


class Identity(torch.nn.Module):
    """Feature "extractor" for torchmetrics that passes features through."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def feats(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, dtype=torch.float64, generator=g) / math.sqrt(d)
    return (torch.randn(n, d, dtype=torch.float64, generator=g) @ mix) * scale + shift


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


# ---------------------------------------------------------------- Fréchet distance


def test_fd_matches_torchmetrics() -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    a, b = feats(600, 32, 0), feats(500, 32, 1, scale=1.2, shift=0.3)
    tm = FrechetInceptionDistance(feature=Identity(32)).double()
    tm.update(a, real=True)
    tm.update(b, real=False)
    assert rel(frechet_distance(real=a, fake=b), float(tm.compute())) <= 1e-10


def test_fd_matches_scipy_sqrtm_formula() -> None:
    from scipy.linalg import sqrtm

    a, b = feats(400, 20, 2).numpy(), feats(300, 20, 3, scale=0.7, shift=-1.0).numpy()
    m1, m2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = ((m1 - m2) ** 2).sum() + np.trace(c1 + c2) - 2 * np.trace(sqrtm(c1 @ c2).real)
    assert rel(frechet_distance(real=a, fake=b), float(ref)) <= 1e-10


def test_fd_closed_forms() -> None:
    a = feats(300, 16, 4)
    delta = torch.linspace(-1, 2, 16, dtype=torch.float64)
    # Same samples shifted: equal covariances, so FD = ‖Δμ‖².
    assert rel(frechet_distance(real=a, fake=a + delta), float(delta @ delta)) <= 1e-9
    assert abs(frechet_distance(real=a, fake=a.clone())) < 1e-10
    # Independent diagonal Gaussians with known stds: FD = ‖Δμ‖² + Σ(σ₁ − σ₂)² (population stats).
    g = torch.Generator().manual_seed(5)
    z = torch.randn(300, 4, dtype=torch.float64, generator=g)
    z = (z - z.mean(0)) / z.std(0)  # exact unit variance per column...
    q, _ = torch.linalg.qr(z - z.mean(0))  # ...and exactly uncorrelated columns
    z = q * math.sqrt(299)
    s1, s2 = torch.tensor([1.0, 2, 3, 4], dtype=torch.float64), torch.tensor([2.0, 2, 1, 5.0])
    want = float(((s1 - s2) ** 2).sum() + 9.0 * 4)
    assert rel(frechet_distance(real=z * s1, fake=z * s2 + 3.0), want) <= 1e-10


def test_fd_permutation_batch_and_translation_invariance() -> None:
    a, b = feats(1000, 24, 6), feats(900, 24, 7, shift=0.5)
    base = frechet_distance(real=a, fake=b)
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    assert rel(frechet_distance(real=a[perm], fake=b), base) <= 1e-12
    for bs in (1, 7, 128, 5000):
        stats = FeatureStats(dim=24)
        for s in range(0, 1000, bs):
            stats.update(a[s : s + bs])
        assert rel(frechet_distance(real=stats, fake=b), base) <= 1e-12
    assert rel(frechet_distance(real=a + 1e3, fake=b + 1e3), base) <= 1e-8


def test_fd_warns_when_fewer_samples_than_dims_and_rejects_bad_input() -> None:
    with pytest.warns(UserWarning, match="rank-deficient"):
        frechet_distance(real=feats(10, 20, 0), fake=feats(50, 20, 1))
    with pytest.raises(DataError, match="features per sample"):
        frechet_distance(real=feats(50, 20, 0), fake=feats(50, 21, 1))
    bad = feats(50, 4, 0)
    bad[3, 1] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        frechet_distance(real=bad, fake=feats(50, 4, 1))


# ---------------------------------------------------------------- KID


def hand_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], x.shape[0]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    total = 0.0
    for i in range(m):
        for j in range(m):
            if i != j:
                total += (kxx[i, j] + kyy[i, j]) / (m * (m - 1))
    return total - 2 * kxy.mean()


def test_kid_one_subset_matches_torchmetrics_and_hand_mmd() -> None:
    from torchmetrics.image.kid import KernelInceptionDistance

    a, b = feats(120, 10, 8), feats(120, 10, 9, scale=1.1, shift=0.2)
    ours = kernel_inception_distance(real=a, fake=b, subsets=1, subset_size=120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = KernelInceptionDistance(feature=Identity(10), subsets=1, subset_size=120).double()
        tm.update(a, real=True)
        tm.update(b, real=False)
        tm_mean = float(tm.compute()[0])
    assert abs(ours.mean - tm_mean) <= 1e-12 * max(1.0, abs(tm_mean))
    assert abs(ours.mean - hand_mmd2(a.numpy(), b.numpy())) <= 1e-12
    assert ours.std == 0.0


def test_kid_seeded_and_identical_sets_near_zero() -> None:
    both = feats(600, 8, 10)
    a, b, twin = both[:300], feats(300, 8, 11, shift=0.4), both[300:]
    r1 = kernel_inception_distance(real=a, fake=b, subsets=20, subset_size=100, seed=3)
    r2 = kernel_inception_distance(real=a, fake=b, subsets=20, subset_size=100, seed=3)
    r3 = kernel_inception_distance(real=a, fake=b, subsets=20, subset_size=100, seed=4)
    assert r1 == r2 and r1.mean != r3.mean and r1.std > 0
    same = kernel_inception_distance(real=a, fake=twin, subsets=20, subset_size=100)
    assert abs(same.mean) < 0.1 * r1.mean
    assert mmd2_unbiased(a, b) == pytest.approx(hand_mmd2(a.numpy(), b.numpy()), abs=1e-12)
    with pytest.warns(UserWarning, match="subset size reduced"):
        kernel_inception_distance(real=a[:50], fake=b, subsets=2)


# ---------------------------------------------------------------- Inception Score


def test_is_matches_torchmetrics_one_split_and_hand_formula() -> None:
    from torchmetrics.image.inception import InceptionScore

    logits = feats(200, 10, 13, scale=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = InceptionScore(feature=Identity(10), splits=1).double()
        tm.update(logits)
        tm_mean = float(tm.compute()[0])
    assert rel(inception_score(logits, splits=1).mean, tm_mean) <= 1e-12
    # 10 slices i*N//10, ddof=0, written out with numpy.
    p = torch.softmax(logits, 1).numpy()
    scores = []
    for i in range(10):
        part = p[i * 200 // 10 : (i + 1) * 200 // 10]
        py = part.mean(0, keepdims=True)
        scores.append(np.exp((part * (np.log(part) - np.log(py))).sum(1).mean()))
    ours = inception_score(logits)
    assert rel(ours.mean, float(np.mean(scores))) <= 1e-12
    assert rel(ours.std, float(np.std(scores))) <= 1e-10


def test_is_closed_forms() -> None:
    assert abs(inception_score(torch.zeros(100, 7)).mean - 1.0) < 1e-12
    onehot = torch.eye(5, dtype=torch.float64).repeat(20, 1) * 1000.0
    r = inception_score(onehot)
    assert abs(r.mean - 5.0) < 1e-9 and r.std < 1e-9


# ---------------------------------------------------------------- PRDC


def test_prdc_matches_prdc_package(capsys: pytest.CaptureFixture[str]) -> None:
    from prdc import compute_prdc

    a, b = feats(300, 12, 14), feats(250, 12, 15, scale=0.8, shift=0.3)
    for k in (3, 5):
        ref = compute_prdc(real_features=a.numpy(), fake_features=b.numpy(), nearest_k=k)
        ours = prdc(real=a, fake=b, k=k, block=64)
        for key in ("precision", "recall", "density", "coverage"):
            assert abs(ours[key] - float(ref[key])) <= 1e-12, (k, key)
    pr = precision_recall(real=a, fake=b)
    dc = density_coverage(real=a, fake=b)
    ref3 = compute_prdc(real_features=a.numpy(), fake_features=b.numpy(), nearest_k=3)
    ref5 = compute_prdc(real_features=a.numpy(), fake_features=b.numpy(), nearest_k=5)
    assert pr == {"precision": float(ref3["precision"]), "recall": float(ref3["recall"])}
    assert abs(dc["density"] - float(ref5["density"])) <= 1e-12
    assert dc["coverage"] == float(ref5["coverage"])
    capsys.readouterr()


def test_prdc_identical_sets_and_mode_collapse() -> None:
    a = feats(200, 6, 16)
    assert prdc(real=a, fake=a.clone(), k=5) == {
        "precision": 1.0,
        "recall": 1.0,
        "density": 1.0,
        "coverage": 1.0,
    }
    # Mode collapse: fake covers a small region of the real data: high precision, low recall.
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 2, dtype=torch.float64, generator=g)
    fake = 0.1 * torch.randn(500, 2, dtype=torch.float64, generator=g)
    pr = precision_recall(real=real, fake=fake)
    assert pr["precision"] > 0.8 and pr["recall"] < 0.3
    # Keyword-only: a positional call cannot swap the sets.
    with pytest.raises(TypeError):
        precision_recall(real, fake)  # type: ignore[misc]


# ---------------------------------------------------------------- Parzen


def test_parzen_matches_scipy_logsumexp_bruteforce() -> None:
    mu, x = feats(300, 9, 17).numpy(), feats(50, 9, 18).numpy()
    for sigma in (0.1, 0.5, 1.0):
        d2 = ((x[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
        ref = logsumexp(-d2 / (2 * sigma**2), axis=1) - np.log(300)
        ref -= 9 * np.log(sigma * np.sqrt(2 * np.pi))
        ours = parzen_log_likelihood(mu, x, sigma, batch_size=7).numpy()
        assert np.max(np.abs(ours - ref) / np.abs(ref)) <= 1e-10


def test_parzen_selects_sigma_on_validation_grid() -> None:
    mu, valid, test = feats(400, 3, 19), feats(100, 3, 20), feats(100, 3, 21)
    res = parzen_window(samples=mu, valid=valid, test=test)
    grid = np.logspace(-1, 0, 10)
    scores = [float(parzen_log_likelihood(mu, valid, s).mean()) for s in grid]
    assert res.sigma == pytest.approx(grid[int(np.argmax(scores))], rel=1e-15)
    ll = parzen_log_likelihood(mu, test, res.sigma)
    assert res.mean == pytest.approx(float(ll.mean()), rel=1e-14)
    assert res.se == pytest.approx(float(ll.numpy().std() / 10.0), rel=1e-12)


# ---------------------------------------------------------------- modes, memorisation


def test_mixture_modes_perfect_and_collapsed() -> None:
    angles = torch.arange(8) * 2 * math.pi / 8
    means = torch.stack([angles.cos(), angles.sin()], 1)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 8, (20000,), generator=g)
    perfect = means[idx] + 0.01 * torch.randn(20000, 2, generator=g)
    r = mixture_modes(perfect, means, std=0.01)
    assert r["modes"] == 8 and abs(r["hq_percent"] - 98.89) < 0.3 and r["reverse_kl"] < 0.01
    collapsed = means[torch.zeros(1000, dtype=torch.long)] + 0.01 * torch.randn(1000, 2)
    c = mixture_modes(collapsed, means, std=0.01)
    assert c["modes"] == 1 and c["reverse_kl"] == pytest.approx(math.log(8), rel=1e-12)
    far = mixture_modes(torch.full((10, 2), 5.0), means, std=0.01)
    assert far["modes"] == 0 and far["hq_percent"] == 0.0 and math.isinf(far["reverse_kl"])


def test_stacked_modes_counts_triples() -> None:
    all_triples = torch.cartesian_prod(torch.arange(10), torch.arange(10), torch.arange(10))
    r = stacked_modes(all_triples.repeat(3, 1))
    assert r["modes"] == 1000 and abs(r["kl"]) < 1e-12
    r1 = stacked_modes(torch.tensor([[1, 2, 3], [1, 2, 3], [4, 5, 6], [4, 5, 6]]))
    assert r1["modes"] == 2 and r1["kl"] == pytest.approx(math.log(500), rel=1e-12)
    with pytest.raises(DataError, match=r"\[N, 3\]"):
        stacked_modes(torch.zeros(4, 2, dtype=torch.long))


def test_memorization_detects_copies() -> None:
    train, held = feats(300, 5, 22), feats(100, 5, 23)
    idx, dist = nearest_neighbours(train[[5, 17]] + 1e-9, train)
    assert idx.tolist() == [5, 17] and float(dist.max()) < 1e-6
    copies = memorization(train=train, fake=train[:200] + 1e-4, heldout=held)
    fresh = memorization(train=train, fake=feats(200, 5, 24), heldout=held)
    assert copies["copy_fraction"] > 0.95 and copies["distance_ratio"] < 0.01
    assert fresh["copy_fraction"] < 0.1 and 0.5 < fresh["distance_ratio"] < 2.0


def test_fd_rank_deficient_matches_scipy_and_stats_path() -> None:
    from scipy.linalg import sqrtm

    a, b = feats(30, 64, 25), feats(200, 64, 26, shift=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = frechet_distance(real=a, fake=b)  # N ≤ d: factor from the centred samples
        slow = frechet_distance(real=FeatureStats.from_features(a), fake=b)  # eigh path
        swapped = frechet_distance(real=b, fake=a)
    an, bn = a.numpy(), b.numpy()
    c1, c2 = np.cov(an, rowvar=False), np.cov(bn, rowvar=False)
    d = an.mean(0) - bn.mean(0)
    ref = d @ d + np.trace(c1 + c2) - 2 * np.trace(sqrtm(c1 @ c2).real)
    assert rel(fast, float(ref)) <= 1e-6
    # sqrt of round-off around the zero eigenvalues costs the eigh path ~1e-8.
    assert rel(fast, slow) <= 1e-7 and rel(swapped, fast) <= 1e-12
