"""`gankit bench ssl`: semi-supervised learning on the 8×8 digits with 10 labels per class.

Per label draw (`model.label_seed` = 0, 1, ...; 10 labelled digits per class drawn from the
1,437-digit train split, the rest unlabelled), test accuracy on the held-out split (360 digits,
`load_digits("test")`) of:

* **ssgan**: `configs/digits-ssgan.yaml` (Salimans et al. 2016), its classifier alone
  (`gankit.models.ssgan.load_classifier`);
* **labelled only**: the same classifier network, optimizer and number of updates trained on the
  100 labelled digits alone (`train_supervised`) — what the unlabelled data and G add;
* **LabelSpreading**: scikit-learn's graph method (Zhou et al. 2004) on the same labels over the
  whole train split, pixels as features; kNN kernel (k = 7, scikit-learn's default) and RBF
  kernel (γ = 1 / (64 · pixel variance), the "scale" heuristic; nothing tuned on labels); the
  better of the two is the baseline;
* **all labels (ceiling)**: the same classifier network trained on all 1,437 train labels.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np

from gankit.bench.common import format_table, mean_se
from gankit.bench.images import CONFIGS

RECIPE = "digits-ssgan.yaml"
QUICK = [
    "train.steps=20",
    "train.batch_size=16",
    "model.g_width=16",
    "model.latent_dim=8",
    "model.d_widths=[32]",
    "model.labelled_batch=16",
]
ROWS = ("ssgan", "labelled only", "LabelSpreading", "all labels (ceiling)")
LABEL_SPREADING = {"knn": {"kernel": "knn", "n_neighbors": 7}, "rbf": {"kernel": "rbf"}}


def label_spreading(x: np.ndarray, y: np.ndarray, labelled: np.ndarray, test: Any) -> dict:
    """Test accuracy of LabelSpreading with each kernel of `LABEL_SPREADING`."""
    from sklearn.semi_supervised import LabelSpreading

    target = np.full(len(y), -1)
    target[labelled] = y[labelled]
    out = {}
    for name, params in LABEL_SPREADING.items():
        if params["kernel"] == "rbf":
            params = {**params, "gamma": 1.0 / (x.shape[1] * x.var())}
        model = LabelSpreading(max_iter=1000, **params).fit(x, target)
        out[name] = float(model.score(*test))
    return out


def one_draw(draw: int, extra: list[str]) -> dict[str, Any]:
    """Train and score every row for one label draw."""
    import gankit
    from gankit.config import load_config
    from gankit.data import load_digits
    from gankit.models.ssgan import choose_labelled, load_classifier, train_supervised

    steps = load_config(CONFIGS / RECIPE, extra).train.steps
    quiet = [
        "train.progress=false",
        f"train.checkpoint_every={steps}",
        f"train.sample_every={steps}",
        f"train.log_every={max(1, steps // 10)}",
        f"train.seed={draw}",
        f"model.label_seed={draw}",
    ]
    cfg = load_config(CONFIGS / RECIPE, [*extra, *quiet])
    x, y = load_digits("train")
    xt, yt = load_digits("test")
    test = (xt.reshape(len(xt), -1).numpy(), yt.numpy())
    m, updates = cfg.model, cfg.train.steps * cfg.train.d_steps
    with tempfile.TemporaryDirectory(prefix="gankit-bench-") as tmp:
        start = time.process_time()
        gankit.train(cfg, tmp)
        took = time.process_time() - start
        ssgan = load_classifier(tmp).score(*test)
    labelled = choose_labelled(y, m.num_classes, m.labels_per_class, m.label_seed)
    alone = train_supervised(x[labelled], y[labelled], m, cfg.train, updates, seed=draw)
    ceiling = train_supervised(x, y, m, cfg.train, updates, seed=draw)
    spreading = label_spreading(x.reshape(len(x), -1).numpy(), y.numpy(), labelled.numpy(), test)
    return {
        "ssgan": ssgan,
        "labelled only": alone.score(*test),
        "LabelSpreading": max(spreading.values()),
        "label_spreading_kernels": spreading,
        "all labels (ceiling)": ceiling.score(*test),
        "ssgan_train_cpu_seconds": took,
    }


def run(quick: bool = False, seeds: int | None = None) -> dict[str, Any]:
    """Every row over label draws (quick: 20 steps, tiny nets, 1 draw)."""
    n_draws = seeds or (1 if quick else 5)
    extra = QUICK if quick else []
    per_draw = [one_draw(draw, extra) for draw in range(n_draws)]
    rows = {}
    for name in ROWS:
        mean, se = mean_se([d[name] for d in per_draw])
        rows[name] = {"mean": mean, "se": se, "per_draw": [d[name] for d in per_draw]}
    table = format_table(
        ["row", "draws", "test accuracy"],
        [[name, n_draws, f"{r['mean']:.3f}±{r['se']:.3f}"] for name, r in rows.items()],
    )
    wins = sum(d["ssgan"] > max(d["labelled only"], d["LabelSpreading"]) for d in per_draw)
    return {
        "protocol": {
            "data": "load_digits('train') (1,437; labels for 10 per class, drawn per "
            "model.label_seed) and held-out load_digits('test') (360)",
            "ssgan": f"configs/{RECIPE}",
            "labelled only": "gankit.models.ssgan.train_supervised: the same network, optimizer, "
            "labelled batch and number of updates, on the 100 labelled digits",
            "LabelSpreading": "sklearn.semi_supervised.LabelSpreading(max_iter=1000) on the 64 "
            "pixels in [-1, 1]; kernels knn (k=7) and rbf (gamma = 1/(64 var)); the better one",
            "all labels (ceiling)": "train_supervised on all 1,437 train labels",
            "draws": n_draws,
            "overrides": extra,
        },
        "measured": rows,
        "per_draw": per_draw,
        "ssgan_beats_both": f"{wins} of {n_draws} draws",
        "goals": {"ssgan": "above labelled only and LabelSpreading"},
        "published": [
            {
                "source": "Salimans et al. 2016, Table 1 (MNIST, 20 labels per class)",
                "error": "0.93 % ± 0.065 (feature matching, 10 seeds)",
            }
        ],
        "published_note": "MNIST 28×28 with 60,000 unlabelled digits; not comparable to 8×8 digits",
        "table": table,
    }
