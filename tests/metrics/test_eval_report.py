"""`gankit eval` and `gankit report` on small real runs (a few training steps), plus the HTML
report rendered in headless Chromium when it is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.errors import ConfigError


def _train(tmp_path_factory: pytest.TempPathFactory, recipe: str, overrides: list[str]) -> Path:
    from gankit.config import load_config
    from gankit.engine import train

    out = tmp_path_factory.mktemp("runs") / recipe
    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "configs" / f"{recipe}.yaml", overrides)
    return Path(train(cfg, out).path)


def _hand_run(run: Path, name: str, shape: list[int]) -> Path:
    """A run directory written by hand as the contract describes (an untrained DCGAN G)."""
    import yaml

    from gankit.config import load_config, to_dict
    from gankit.modeldir import write_model_dir
    from gankit.nets import architecture_spec, build_generator
    from gankit.viz import plot_losses, save_image

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "configs" / "digits-dcgan.yaml", ["model.g_width=8"])
    torch.manual_seed(0)
    arch = architecture_spec(to_dict(cfg.model), shape)
    module = build_generator(arch)
    spec = {
        "kind": "image-generator",
        "architecture": arch,
        "latent_dim": 64,
        "num_classes": None,
        "data": {"name": name, "shape": shape, "range": [-1, 1]},
        "step": 20,
        "config": to_dict(cfg),
    }
    write_model_dir(run, module.state_dict(), spec)
    (run / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg)))
    history = [
        {"step": s, "loss_d": 1.4 - s / 50, "loss_g": 0.7 + s / 40, "time": s / 10}
        for s in range(0, 21, 5)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    for step in (10, 20):
        save_image(torch.rand(16, *shape) * 2 - 1, run / "samples" / f"step-{step:08d}.png")
    plot_losses(history, run / "loss_curve.png")
    return run


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _hand_run(tmp_path_factory.mktemp("runs") / "digits", "digits", [1, 8, 8])


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(
        tmp_path_factory,
        "ring-gan",
        [
            "train.steps=4",
            "train.batch_size=32",
            "data.n_samples=500",
            "model.latent_dim=8",
            "model.g_width=16",
            "model.d_width=16",
            "train.checkpoint_every=2",
            "train.sample_every=2",
            "train.log_every=1",
            "train.device=cpu",
        ],
    )


def test_eval_digits_records_and_cli(digits_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.metrics.evaluate import evaluate
    from gankit.metrics.features import digits_extractor

    records = evaluate(digits_run, n=400, seed=1)
    expected = {
        "fd",
        "kid",
        "is",
        "precision",
        "recall",
        "density",
        "coverage",
        "parzen",
        "memorization",
    }
    assert expected <= set(records)
    fd = records["fd"]
    assert fd["extractor"] == "digits-classifier"
    assert fd["extractor_sha256"] == digits_extractor().sha256
    assert (fd["n_real"], fd["n_fake"], fd["seed"]) == (1437, 400, 1)
    assert fd["gankit_version"] and fd["preprocessing"]
    # the values against independent implementations on the same features / logits
    from gankit.data import load_digits
    from gankit.generator import load_generator

    fake = load_generator(digits_run).sample(400, seed=1)
    ext = digits_extractor()
    assert fd["value"] == pytest.approx(
        _scipy_fd(ext.features(load_digits("train")[0]), ext.features(fake)), rel=1e-6
    )
    assert records["is"]["value"] == pytest.approx(_numpy_is(ext.logits(fake)), rel=1e-9)
    # protocol: σ chosen from logspace(-1, 0, 10) on the train split
    assert min(abs(np.logspace(-1, 0, 10) - records["parzen"]["details"]["sigma"])) < 1e-9
    saved = json.loads((digits_run / "eval.json").read_text())
    assert saved["metrics"]["fd"]["value"] == fd["value"] and saved["n"] == 400
    # Same seed → same numbers.
    assert evaluate(digits_run, ["fd"], n=400, seed=1, write=False)["fd"]["value"] == fd["value"]
    assert main(["eval", str(digits_run), "--metrics", "fd", "is", "--n", "200"]) == 0
    out = capsys.readouterr().out
    assert "| fd " in out and "digits-classifier" in out
    with pytest.raises(ConfigError, match="unknown metrics"):
        evaluate(digits_run, ["fid-inf"], n=100)


def _scipy_fd(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance by the textbook formula with scipy's sqrtm (float64)."""
    from scipy.linalg import sqrtm

    a, b = real.double().numpy(), fake.double().numpy()
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(c1 + c2) - 2 * np.trace(sqrtm(c1 @ c2).real))


def _numpy_is(logits: torch.Tensor, splits: int = 10) -> float:
    """Inception score: mean over 10 consecutive splits of exp E_x KL(p(y|x) ‖ p(y))."""
    x = logits.double().numpy()
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scores = []
    for part in np.array_split(p, splits):
        kl = (part * (np.log(part) - np.log(part.mean(0, keepdims=True)))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores))


def _reference_modes(x: torch.Tensor, means: torch.Tensor, std: float) -> tuple[int, float]:
    """VEEGAN protocol, written out: nearest mean, high quality within 3σ, modes hit."""
    d = np.linalg.norm(x.double().numpy()[:, None, :] - means.double().numpy()[None], axis=2)
    hq = d.min(1) < 3 * std
    return len(set(d.argmin(1)[hq].tolist())), 100.0 * hq.mean()


def test_eval_ring_modes(ring_run: Path) -> None:
    from gankit.generator import load_generator
    from gankit.metrics.evaluate import evaluate

    records = evaluate(ring_run, n=500)
    modes, hq = _reference_modes(load_generator(ring_run).sample(500, seed=0), *_ring_truth())
    assert records["modes"]["value"] == modes
    assert records["hq_percent"]["value"] == pytest.approx(hq, abs=1e-9)
    assert records["fd"]["extractor"] == "pixels" and records["fd"]["extractor_sha256"] is None


def test_eval_with_rejection_scores_the_rejection_samples(ring_run: Path) -> None:
    import json

    from gankit.generator import load_generator
    from gankit.metrics.evaluate import evaluate
    from gankit.metrics.modes import mixture_modes

    records = evaluate(ring_run, ["modes"], n=500, seed=3, rejection=True)
    expected = mixture_modes(
        load_generator(ring_run).sample(500, seed=3, rejection=True), *_ring_truth()
    )
    assert records["modes"]["value"] == expected["modes"]
    assert json.loads((ring_run / "eval.json").read_text())["sampling"] == "discriminator rejection"


def _ring_truth():
    from gankit.data.toy import RING_PRESET, ring_means

    return ring_means(RING_PRESET["modes"], RING_PRESET["radius"]), RING_PRESET["std"]


def test_eval_stacked_digits(tmp_path: Path) -> None:
    from gankit.generator import load_generator
    from gankit.metrics.evaluate import evaluate
    from gankit.metrics.features import digits_extractor

    run = _hand_run(tmp_path / "stacked", "stacked-digits", [3, 8, 8])
    records = evaluate(run, n=300)
    # reference: classify each channel with the digits classifier, count distinct triples and
    # take the KL of their histogram to uniform over 1,000 with scipy
    from scipy.stats import entropy

    fake = load_generator(run).sample(300, seed=0)
    model = digits_extractor().model
    with torch.no_grad():
        labels = model(fake.reshape(900, 1, 8, 8)).argmax(1).reshape(300, 3).numpy()
    triples, counts = np.unique(labels, axis=0, return_counts=True)
    histogram = np.zeros(1000)
    histogram[triples @ np.array([100, 10, 1])] = counts
    assert records["stacked_modes"]["value"] == len(triples)
    assert records["stacked_kl"]["value"] == pytest.approx(entropy(histogram, np.ones(1000)))
    assert records["stacked_kl"]["extractor"] == "digits-classifier"
    with pytest.raises(ConfigError, match="no offline extractor"):
        evaluate(_hand_run(tmp_path / "rgb", "cifar10", [3, 16, 16]), n=20)


def test_eval_inception_with_user_weights(tmp_path: Path, random_inception: Path) -> None:
    from gankit.metrics.evaluate import evaluate

    run = _hand_run(tmp_path / "rgb", "cifar10", [3, 16, 16])
    real = torch.rand(11, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with pytest.warns(UserWarning):
        records = evaluate(run, ["fd", "is"], n=10, inception_weights=random_inception, real=real)
    assert records["fd"]["extractor"] == "inception-v3-fid"
    assert records["fd"]["preprocessing"].startswith("tf1-bilinear-299")
    assert (records["fd"]["n_real"], records["fd"]["n_fake"]) == (11, 10)
    assert records["is"]["value"] >= 1.0


@pytest.fixture(scope="module")
def reports(digits_run: Path, ring_run: Path) -> dict[str, Path]:
    """report.html of both runs, written once for the tests below."""
    from gankit.report import write_report

    return {"digits": write_report(digits_run, n=150), "ring": write_report(ring_run, n=150)}


def test_report_is_self_contained(
    reports: dict[str, Path], digits_run: Path, ring_run: Path
) -> None:
    for run, path in ((digits_run, reports["digits"]), (ring_run, reports["ring"])):
        page = path.read_text()
        assert path == run / "report.html"
        srcs = re.findall(r'<img[^>]*src="([^"]+)"', page)
        assert len(srcs) >= 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
        for heading in (
            "Configuration",
            "Samples over training time",
            "2-D embedding",
            "Loss curves",
            "Metrics",
        ):
            assert heading in page
        headings = re.findall(r"<h2>([^<]+)</h2>", page)
        assert headings[0] == "Metrics" and headings[-1] == "Configuration"  # scores lead
    digits_page = (digits_run / "report.html").read_text()
    assert "Interpolation in z" in digits_page and "Nearest training example" in digits_page


CHECK_IMAGES = """
<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const p = document.createElement('p');
  p.id = 'img-check';
  p.textContent = 'IMAGES ' + ok + '/' + imgs.length;
  document.body.appendChild(p);
});
</script>
"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    _chromium() is None, reason="needs Debian's chromium (apt-get install chromium)"
)
def test_report_renders_in_headless_chromium(reports: dict[str, Path], tmp_path: Path) -> None:
    page = reports["digits"].read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", CHECK_IMAGES + "</body>"))
    base = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*base, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = re.search(r"IMAGES (\d+)/(\d+)", dom)
    assert found, dom[-500:]
    ok, total = int(found.group(1)), int(found.group(2))
    assert total >= 5 and ok == total
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1000,1400", probe.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    from PIL import Image

    pixels = torch.from_numpy(np.asarray(Image.open(shot).convert("L"), dtype=np.float32))
    assert pixels.std() > 10  # not a blank page
