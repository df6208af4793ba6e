"""The HTML run report: one self-contained `report.html` (every image inlined as base64 PNG).

Sections: the metric table first, with each metric's protocol (from `eval.json`, computed first
when missing), then a sample grid, samples over training time, interpolation in z, the nearest
training example of generated samples (Goodfellow et al. 2014, Fig. 2), a 2-D embedding (PCA
and t-SNE) of real vs generated features, loss curves, and the configuration last.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.modeldir import atomic_write_bytes

REPORT_FILE = "report.html"
THUMB_WIDTH = {True: 200, False: 320}  # image grids (pixelated) vs scatter plots

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; margin-top: 1.6em; }
img { image-rendering: pixelated; max-width: 100%; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ccc;
padding: 3px 6px; text-align: left; vertical-align: top; } pre { background: #f6f6f6;
padding: 0.8em; overflow-x: auto; font-size: 0.8em; } .note { color: #666; font-size: 0.85em; }
"""


def _img(png: bytes, alt: str, attrs: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" {attrs} src="data:image/png;base64,{data}">'


def _png_from(plot: Callable[[Path], Any]) -> bytes:
    """Run a viz function that writes a PNG to a path; return the bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figure.png"
        plot(path)
        return path.read_bytes()


def _grid_png(images: torch.Tensor, nrow: int | None = None) -> bytes:
    from gankit.viz import make_grid, png_bytes

    return png_bytes(make_grid(images, nrow=nrow), scale=max(1, 64 // images.shape[-1]))


def _figure_png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _real_data(gen: Any, n: int) -> tuple[torch.Tensor | None, str]:
    """Real samples comparable with the generator's, and what they are."""
    from gankit.metrics.evaluate import run_data, toy_mixture

    data = run_data(gen.spec)
    name = data.get("name")
    if name == "digits":
        from gankit.data import load_digits

        return load_digits("train")[0], "digits train split"
    if name in ("ring", "grid"):
        from gankit.data import sample_mixture

        means, std = toy_mixture(data)
        return sample_mixture(means, n, std, seed=1), f"{name} mixture samples"
    return None, ""


def _features(gen: Any, x: torch.Tensor) -> tuple[torch.Tensor, str]:
    if tuple(gen.output_shape) == (1, 8, 8):
        from gankit.metrics.features import digits_extractor

        return digits_extractor().features(x), "digits-classifier features (128-d)"
    return x.reshape(len(x), -1).double(), "raw values"


def _embedding_png(real: torch.Tensor, fake: torch.Tensor, what: str) -> bytes:
    """PCA and t-SNE (scikit-learn) of real vs generated features, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = torch.cat([real, fake]).numpy()
    is_real = np.arange(len(x)) < len(real)
    pca = PCA(n_components=min(2, x.shape[1]), random_state=0).fit_transform(x)
    reduced = PCA(n_components=min(30, x.shape[1]), random_state=0).fit_transform(x)
    tsne = TSNE(n_components=2, init="pca", perplexity=30, random_state=0).fit_transform(reduced)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), dpi=90)
    for ax, emb, title in ((axes[0], pca, "PCA"), (axes[1], tsne, "t-SNE")):
        if emb.shape[1] == 1:
            emb = np.column_stack([emb[:, 0], np.zeros(len(emb))])
        ax.scatter(*emb[is_real].T, s=4, alpha=0.5, c="tab:gray", label="real")
        ax.scatter(*emb[~is_real].T, s=4, alpha=0.5, c="tab:blue", label="generated")
        ax.set_title(f"{title} of {what}", fontsize=9)
        ax.legend(fontsize=7)
    return _figure_png(fig)


def _nearest_png(gen: Any, fake: torch.Tensor, real: torch.Tensor) -> bytes:
    """Goodfellow Fig. 2: generated samples (top) above their nearest training example."""
    from gankit.metrics.memorization import nearest_neighbours

    shown = fake[:10]
    idx, _ = nearest_neighbours(shown.reshape(len(shown), -1), real.reshape(len(real), -1))
    return _grid_png(torch.cat([shown, real[idx]]), nrow=len(shown))


ORDER = (
    "fd",
    "kid",
    "is",
    "precision",
    "recall",
    "density",
    "coverage",
    "parzen",
    "memorization",
    "modes",
    "hq_percent",
    "reverse_kl",
    "stacked_modes",
    "stacked_kl",
)


def _metric_table(records: dict[str, Any]) -> str:
    from gankit.metrics.evaluate import format_value

    rows = []
    names = sorted(records, key=lambda k: (ORDER.index(k) if k in ORDER else len(ORDER), k))
    for name in names:
        r = records[name]
        value = format_value(r)
        sha = (r.get("extractor_sha256") or "")[:12]
        cells = [
            name,
            value,
            f"{r['extractor']} {sha}",
            r["n_real"],
            r["n_fake"],
            r["seed"],
            r["preprocessing"],
            r["protocol"],
            r["gankit_version"],
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = [
        "metric",
        "value",
        "extractor (sha256)",
        "n_real",
        "n_fake",
        "seed",
        "preprocessing",
        "protocol",
        "gankit",
    ]
    return (
        "<table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def _training_samples(run: Path, is_image: bool = True) -> str:
    files = sorted((run / "samples").glob("step-*.png"))
    if not files:
        return '<p class="note">No samples/step-*.png in the run.</p>'
    picks = [files[int(i)] for i in np.unique(np.linspace(0, len(files) - 1, min(8, len(files))))]
    width = f'width="{THUMB_WIDTH[is_image]}"'
    parts = [
        f"<figure style='display:inline-block'>{_img(p.read_bytes(), p.stem, width)}"
        f"<figcaption>{html.escape(p.stem)}</figcaption></figure>"
        for p in picks
    ]
    return "".join(parts)


def _loss_curves(run: Path) -> str:
    from gankit.viz import plot_losses, read_history

    history = read_history(run / "metrics.jsonl")
    if history:
        return _img(_png_from(lambda p: plot_losses(history, p)), "loss curves")
    if (run / "loss_curve.png").is_file():
        return _img((run / "loss_curve.png").read_bytes(), "loss curves")
    return '<p class="note">No metrics.jsonl in the run.</p>'


def _load_eval(run: Path, n: int) -> dict[str, Any]:
    from gankit.metrics.evaluate import EVAL_FILE, evaluate

    path = run / EVAL_FILE
    if path.is_file():
        return json.loads(path.read_text()).get("metrics", {})
    return evaluate(run, n=n)


def _interpolation(gen: Any) -> str:
    interp = torch.cat([gen.interpolate(10, seed=s) for s in range(6)])
    return (
        _img(_grid_png(interp, nrow=10), "interpolation")
        + '<p class="note">Each row: 10 steps on the line between two z.</p>'
    )


def _class_grid(gen: Any, max_rows: int = 20) -> str:
    """A class-conditional generator's class grid: one row per class (the first `max_rows`)."""
    rows = list(range(min(gen.num_classes, max_rows)))
    grid = gen.class_grid(per_class=10, seed=0, classes=rows)
    more = f" (the first {max_rows} of {gen.num_classes})" if gen.num_classes > max_rows else ""
    return (
        _img(_grid_png(grid, nrow=10), "class grid")
        + f'<p class="note">Row k: class k{more}; each column one latent code (seed 0).</p>'
    )


def _code_traversals(gen: Any, max_continuous: int = 4) -> str:
    """InfoGAN latent traversals: per code, rows of fixed other latents, that code varied."""
    codes = gen.codes
    parts = []
    if codes["categorical"]:
        grid = gen.traversal("categorical", rows=8, seed=0)
        parts.append(
            _img(_grid_png(grid, nrow=codes["categorical"]), "categorical code traversal")
            + '<p class="note">Categorical code: column k is category k; each row keeps one '
            "draw of the noise and continuous codes (seed 0).</p>"
        )
    for j in range(min(codes["continuous"], max_continuous)):
        parts.append(
            _img(_grid_png(gen.traversal(j, steps=10, rows=8, seed=0), nrow=10), f"code {j}")
            + f'<p class="note">Continuous code {j} from -2 to 2 along each row; the other '
            "latents fixed per row (seed 0).</p>"
        )
    return "".join(parts)


def _image_sections(
    run: Path, gen: Any, fake: torch.Tensor, real: torch.Tensor | None, real_name: str
) -> list[tuple[str, str]]:
    """Sample grid, samples over training, interpolation, nearest training example."""
    sections = [
        ("Samples", _img(_grid_png(fake[:64]), "sample grid")),
        ("Samples over training time", _training_samples(run)),
        ("Interpolation in z", _interpolation(gen)),
    ]
    if getattr(gen, "num_classes", None):
        sections.insert(1, ("Samples by class", _class_grid(gen)))
    if getattr(gen, "codes", None):  # InfoGAN
        sections.insert(1, ("Latent code traversals", _code_traversals(gen)))
    if real is not None and hasattr(gen, "reconstruct"):  # models with an encoder (VAE)
        shown = real[:10]
        sections.insert(
            1,
            (
                "Reconstructions",
                _img(_grid_png(torch.cat([shown, gen.reconstruct(shown)]), nrow=10), "recon")
                + f'<p class="note">Top: the first images of the {real_name}; bottom: '
                "decode(encode(x)), the decoder mean at the posterior mean.</p>",
            ),
        )
    if real is not None:
        sections.append(
            (
                "Nearest training example",
                _img(_nearest_png(gen, fake, real), "nearest neighbours")
                + '<p class="note">Top: generated; bottom: '
                f"nearest image of the {real_name} (pixel L2).</p>",
            )
        )
    return sections


def _points_sections(
    run: Path, fake: torch.Tensor, real: torch.Tensor | None
) -> list[tuple[str, str]]:
    """A scatter plot of generated vs real points and the training-time snapshots."""
    from gankit.viz import plot_points

    png = _png_from(lambda p: plot_points(fake, p, real=real, title="generated vs real"))
    return [
        ("Samples", _img(png, "samples")),
        ("Samples over training time", _training_samples(run, False)),
    ]


def _embedding_section(gen: Any, fake: torch.Tensor, real: torch.Tensor) -> tuple[str, str]:
    m = min(500, len(real), len(fake))
    fr, what = _features(gen, real[:m])
    ff, _ = _features(gen, fake[:m])
    return ("Real vs generated: 2-D embedding", _img(_embedding_png(fr, ff, what), "embedding"))


def _config_text(run: Path, gen: Any) -> str:
    """The run's config.yaml, or the config recorded in model.json."""
    if (run / "config.yaml").is_file():
        return (run / "config.yaml").read_text()
    return json.dumps(gen.spec.get("config", {}), indent=1)


def _page(run: Path, gen: Any, sections: list[tuple[str, str]]) -> str:
    title = f"gankit run report: {html.escape(run.name)}"
    body = "".join(f"<h2>{h}</h2>\n{c}\n" for h, c in sections)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{CSS}</style></head><body><h1>{title}</h1>"
        f"<p class='note'>step {gen.spec.get('step')}, generator sha256 "
        f"{str(gen.spec.get('weights_sha256'))[:16]}…</p>{body}</body></html>"
    )


def _translation_page(run: Path, model: Any) -> str:
    """The report of a translator (CycleGAN): translations and cycles, training, config."""
    from gankit.models.cyclegan import translation_grid

    grid = translation_grid(model)
    shown = (
        '<p class="note">The training images are not available here.</p>'
        if grid is None
        else _img(_grid_png(grid, nrow=len(grid) // 6), "translations")
        + '<p class="note">Rows: held-out a, G(a), F(G(a)); b, F(b), G(F(b)).</p>'
    )
    sections = [
        ("Translations", shown),
        ("Over training time", _training_samples(run)),
        ("Loss curves", _loss_curves(run)),
        ("Configuration", f"<pre>{html.escape(_config_text(run, model))}</pre>"),
    ]
    return _page(run, model, sections)


def _translator(run: Path) -> Any:
    """The loaded model when the run holds a translator (a kind tagged "translation")."""
    from gankit.modeldir import verify_model_dir
    from gankit.registry import kind

    entry = kind(verify_model_dir(run).get("kind"), run)
    return entry.load(run) if "translation" in entry.tags else None


def write_report(run_dir: str | os.PathLike, n: int = 2000) -> Path:
    """Write `report.html` into the run directory and return its path."""
    from gankit.registry import load_sampler

    run = Path(run_dir)
    translator = _translator(run)
    if translator is not None:  # CycleGAN: translations instead of samples
        path = run / REPORT_FILE
        atomic_write_bytes(path, _translation_page(run, translator).encode("utf-8"))
        return path
    gen = load_sampler(run)  # a GAN generator or a VAE
    records = _load_eval(run, max(n, 10))
    fake = gen.sample(n, seed=0)
    real, real_name = _real_data(gen, n)
    # the scores first (what a reader came for), the configuration last
    sections = [("Metrics", _metric_table(records))]
    if gen.is_image:
        sections += _image_sections(run, gen, fake, real, real_name)
    else:
        sections += _points_sections(run, fake, real)
    if real is not None:
        sections.append(_embedding_section(gen, fake, real))
    sections.append(("Loss curves", _loss_curves(run)))
    sections.append(("Configuration", f"<pre>{html.escape(_config_text(run, gen))}</pre>"))
    path = run / REPORT_FILE
    atomic_write_bytes(path, _page(run, gen, sections).encode("utf-8"))
    return path
