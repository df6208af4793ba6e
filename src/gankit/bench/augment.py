"""`gankit bench augment`: does adding generated data to a training set pay downstream (issue 14)?

Tables. breast_cancer (minority: malignant) and wine one-vs-rest (minority: class_0 against
the other two), each with its minority reduced to 10 % and to 5 % of the training rows. Per seed:
a stratified 70/30 split (`random_state=seed`); in the training part the minority is subsampled
(`default_rng(seed)`) to the share; every method gets exactly those rows and brings the minority
up to the majority's count (imbalanced-learn's "auto"): none, random oversampling, SMOTE,
ADASYN (k = min(5, minority rows - 1)), ctgan's conditional sampling (if the `ctgan` package is
installed; it is not a gankit dependency) and gankit's `GANOverSampler` (TabularGAN with the
label as `class_column`, `steps` steps, no filter). Downstream: standardised logistic
regression, a random forest (100 trees) and gradient boosting (scikit-learn defaults), scored on
the untouched 30 %: minority F1, balanced accuracy and ROC AUC (minority = positive class).

Images. scikit-learn's digits (gankit's fixed 1,437 / 360 split) with 5, 10 and 20 labelled
images per class drawn from the training split (seeded). A small CNN is trained on (a) the real
images, (b) real + `extra` shifted/rotated copies per class, (c) real + `extra` images per class
from the conditional GAN (`augment_images`: the cdcgan recipe trained on the same few images,
`gan_steps` steps), (d) real + both; accuracy on the 360 test digits.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gankit.bench.common import format_table, mean_se

TABLES = {
    "breast 10%": ("breast", 0.10),
    "breast 5%": ("breast", 0.05),
    "wine 10%": ("wine", 0.10),
    "wine 5%": ("wine", 0.05),
}
DOWNSTREAM = ("LR", "RF", "GB")
METRICS = ("minority_f1", "balanced_accuracy", "roc_auc")
PER_CLASS = (5, 10, 20)


# ----------------------------------------------------------------------------------- tables
def load_binary(name: str) -> tuple[np.ndarray, np.ndarray]:
    """X and y with y = 1 for the minority class (breast: malignant; wine: class_0)."""
    from sklearn.datasets import load_breast_cancer, load_wine

    X, y = (load_breast_cancer if name == "breast" else load_wine)(return_X_y=True)
    return X, (y == 0).astype(int)


def split(
    X: np.ndarray, y: np.ndarray, seed: int, share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified 70/30 split; the training minority (y = 1) subsampled so that it is `share`
    of the training rows (at least 3 rows, so SMOTE/ADASYN have 2 neighbours)."""
    from sklearn.model_selection import train_test_split

    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    majority = np.flatnonzero(y_tr == 0)
    n_min = max(3, round(share * len(majority) / (1 - share)))
    minority = np.random.default_rng(seed).choice(np.flatnonzero(y_tr == 1), n_min, replace=False)
    keep = np.sort(np.concatenate([majority, minority]))
    return X_tr[keep], y_tr[keep], X_te, y_te


def samplers(seed: int, n_min: int, steps: int) -> dict[str, Any]:
    """method -> an object with fit_resample(X, y), or None (no augmentation)."""
    from imblearn.over_sampling import ADASYN, SMOTE, RandomOverSampler

    from gankit.augment import GANOverSampler

    k = min(5, n_min - 1)
    out: dict[str, Any] = {
        "none": None,
        "random oversampling": RandomOverSampler(random_state=seed),
        "SMOTE": SMOTE(k_neighbors=k, random_state=seed),
        "ADASYN": ADASYN(n_neighbors=k, random_state=seed),
    }
    if _ctgan() is not None:
        out["ctgan (conditional)"] = CTGANSampler(steps, seed)
    out["gankit"] = GANOverSampler(random_state=seed, n_steps=steps)
    return out


def _ctgan() -> Any:
    try:
        from ctgan import CTGAN
    except ImportError:
        return None
    return CTGAN


class CTGANSampler:
    """ctgan's CTGAN (optional package) fitted with the label as a discrete column; the missing
    minority rows come from `sample(k, condition_column, condition_value)`."""

    def __init__(self, steps: int, seed: int) -> None:
        self.steps, self.seed = steps, seed

    def fit_resample(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import pandas as pd

        table = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
        table["label"] = np.where(y == 1, "minority", "majority")
        model = _ctgan()(epochs=self.steps, batch_size=500, verbose=False)
        model.set_random_state(self.seed)
        model.fit(table, discrete_columns=["label"])
        k = int(np.sum(y == 0) - np.sum(y == 1))
        rows = model.sample(k, condition_column="label", condition_value="minority")
        new = rows.drop(columns="label").to_numpy(float)
        return np.concatenate([X, new]), np.concatenate([y, np.ones(len(new), dtype=y.dtype)])


def downstream(seed: int) -> dict[str, Any]:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "LR": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "RF": RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
        "GB": GradientBoostingClassifier(random_state=seed),
    }


def score(model: Any, X_te: np.ndarray, y_te: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    pred = model.predict(X_te)
    proba = model.predict_proba(X_te)[:, list(model.classes_).index(1)]
    return {
        "minority_f1": float(f1_score(y_te, pred, pos_label=1)),
        "balanced_accuracy": float(balanced_accuracy_score(y_te, pred)),
        "roc_auc": float(roc_auc_score(y_te, proba)),
    }


def run_tables(
    seeds: int, steps: int, tables: list[str] | None = None, methods: list[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """table -> method -> model -> [per-seed scores] (all methods, or `methods`); and notes
    (failures, skipped methods)."""
    runs: dict[str, Any] = {}
    notes = []
    if _ctgan() is None:
        notes.append("ctgan (conditional) skipped: the `ctgan` package is not installed")
    for table in tables or list(TABLES):
        name, share = TABLES[table]
        X, y = load_binary(name)
        per = runs.setdefault(table, {})
        for seed in range(seeds):
            X_tr, y_tr, X_te, y_te = split(X, y, seed, share)
            n_min = int(y_tr.sum())
            for method, sampler in samplers(seed, n_min, steps).items():
                if methods is not None and method not in methods:
                    continue
                start = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        X_a, y_a = (
                            (X_tr, y_tr) if sampler is None else sampler.fit_resample(X_tr, y_tr)
                        )
                except (ValueError, RuntimeError) as exc:  # ADASYN: "no samples generated"
                    notes.append(f"{table} seed {seed} {method}: failed ({exc}); scored as none")
                    X_a, y_a = X_tr, y_tr
                seconds = time.perf_counter() - start
                for model_name, model in downstream(seed).items():
                    row = score(model.fit(X_a, y_a), X_te, y_te)
                    row["seconds"] = seconds
                    per.setdefault(method, {}).setdefault(model_name, []).append(row)
            print(
                f"augment {table} seed {seed}: {n_min} minority rows", file=sys.stderr, flush=True
            )
    return runs, notes


def summarise_tables(runs: dict[str, Any]) -> dict[str, Any]:
    """Means ± s.e. per table, method and model; the goal checks on minority F1."""
    summary = {
        table: {
            method: {
                model: {k: mean_se([r[k] for r in rows]) for k in (*METRICS, "seconds")}
                for model, rows in by_model.items()
            }
            for method, by_model in per.items()
        }
        for table, per in runs.items()
    }
    cells = [(t, m) for t in summary for m in DOWNSTREAM]

    def f1(method: str, t: str, m: str) -> float:
        return summary[t][method][m]["minority_f1"][0]

    average = {
        method: float(np.mean([f1(method, t, m) for t, m in cells]))
        for method in next(iter(summary.values()))
    }
    below_none = [f"{t} {m}" for t, m in cells if f1("gankit", t, m) < f1("none", t, m)]
    below_smote = [f"{t} {m}" for t, m in cells if f1("gankit", t, m) < f1("SMOTE", t, m)]
    goals = {
        "average_minority_f1": average,
        "gankit_at_least_smote_on_average": average["gankit"] >= average["SMOTE"],
        "gankit_below_none_in": below_none,
        "gankit_below_smote_in": below_smote,
    }
    return {"summary": summary, "goals": goals}


def table_text(summary: dict[str, Any], goals: dict[str, Any]) -> str:
    rows = []
    for table, per in summary.items():
        for method, by_model in per.items():
            for model, vals in by_model.items():
                cells = [f"{vals[k][0]:.3f} ± {vals[k][1]:.3f}" for k in METRICS]
                rows.append([table, method, model, *cells, f"{vals['seconds'][0]:.1f}"])
    text = format_table(
        ["table", "method", "model", "minority F1", "balanced acc.", "ROC AUC", "aug. s"], rows
    )
    avg = goals["average_minority_f1"]
    text += "\n\nminority F1, mean over tables and models:\n" + format_table(
        ["method", "minority F1"], [[m, f"{v:.3f}"] for m, v in avg.items()]
    )
    text += (
        f"\ngankit below no augmentation in: {goals['gankit_below_none_in'] or 'none'}"
        f"\ngankit below SMOTE in: {goals['gankit_below_smote_in'] or 'none'}"
    )
    return text


# ----------------------------------------------------------------------------------- images
def few_digits(per_class: int, seed: int) -> tuple[Any, Any]:
    """`per_class` training digits of each class (seeded), as [N, 1, 8, 8] in [-1, 1]."""
    import torch

    from gankit.data.images import load_digits

    x, y = load_digits("train")
    rng = np.random.default_rng(seed)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(y.numpy() == c), per_class, replace=False) for c in range(10)]
    )
    return x[idx], y[idx].to(torch.int64)


def shifted(x: Any, y: Any, copies: int, seed: int) -> tuple[Any, Any]:
    """`copies` randomly shifted (±1 pixel) and rotated (±15°) versions of each image."""
    import torch
    from torch.nn import functional as F

    g = torch.Generator().manual_seed(seed)
    xs = x.repeat(copies, 1, 1, 1)
    n = len(xs)
    angle = (torch.rand(n, generator=g) * 2 - 1) * np.pi / 12
    shift = torch.randint(-1, 2, (n, 2), generator=g).float() * (2 / 8)  # pixels -> [-1, 1]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle), -torch.sin(angle)
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(xs.shape), align_corners=False)
    out = F.grid_sample(xs + 1, grid, align_corners=False, padding_mode="zeros") - 1
    return out, y.repeat(copies)


def gan_digits(x: Any, y: Any, per_class: int, steps: int, seed: int, tmp: Path) -> tuple:
    """Images from `augment_images` trained on the few digits (written as PNG class folders)."""
    import torch

    from gankit.augment.images import augment_images, save_png
    from gankit.data.images import load_image_folder

    data = tmp / f"real-{seed}"
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        (data / str(int(label))).mkdir(parents=True, exist_ok=True)
        save_png(image.numpy(), data / str(int(label)) / f"{i:04d}.png")
    out = tmp / f"gen-{seed}"
    augment_images(data, out, per_class=per_class, steps=steps, seed=seed, progress=False)
    images, labels = load_image_folder(out, None, 1)
    return images, labels.to(torch.int64)  # folder names 0..9 sort as the digits


def small_cnn() -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(32 * 16, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def cnn_accuracy(x: Any, y: Any, x_te: Any, y_te: Any, steps: int, seed: int) -> float:
    """Test accuracy of `small_cnn` after `steps` Adam steps (batch 64) on (x, y)."""
    import torch
    from torch.nn import functional as F

    torch.manual_seed(seed)
    net = small_cnn()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(x), (min(64, len(x)),), generator=g)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return float((net(x_te).argmax(1) == y_te).float().mean())


def run_images(
    seeds: int, gan_steps: int, cnn_steps: int, extra: int, sizes: tuple[int, ...] = PER_CLASS
) -> dict[str, Any]:
    """per_class -> arm -> [test accuracy per seed]."""
    import torch

    from gankit.data.images import load_digits

    x_te, y_te = load_digits("test")
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gankit-bench-augment-") as tmp:
        for n in sizes:
            per = runs.setdefault(str(n), {})
            for seed in range(seeds):
                x, y = few_digits(n, seed)
                xb, yb = shifted(x, y, max(1, extra // n), seed)
                xg, yg = gan_digits(x, y, extra, gan_steps, seed, Path(tmp) / f"n{n}")
                arms = {
                    "a real": (x, y),
                    "b real + shifts/rotations": (torch.cat([x, xb]), torch.cat([y, yb])),
                    "c real + cGAN": (torch.cat([x, xg]), torch.cat([y, yg])),
                    "d real + both": (torch.cat([x, xb, xg]), torch.cat([y, yb, yg])),
                }
                for arm, (xa, ya) in arms.items():
                    acc = cnn_accuracy(xa, ya, x_te, y_te, cnn_steps, seed)
                    per.setdefault(arm, []).append(acc)
                print(f"augment images {n}/class seed {seed}", file=sys.stderr, flush=True)
    return runs


def images_text(runs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    summary = {n: {arm: mean_se(v) for arm, v in per.items()} for n, per in runs.items()}
    arms = list(next(iter(summary.values())))
    rows = [
        [n, *(f"{summary[n][a][0]:.3f} ± {summary[n][a][1]:.3f}" for a in arms)] for n in summary
    ]
    goal = {
        n: max(summary[n][arms[2]][0], summary[n][arms[3]][0]) > summary[n][arms[1]][0]
        for n in summary
    }
    return format_table(["per class", *arms], rows), {"summary": summary, "c_or_d_beats_b": goal}


# -------------------------------------------------------------------------------------- run
def run(quick: bool = False, seeds: int | None = None) -> dict[str, Any]:
    """Both halves. Full: 5 seeds, 300 GAN steps (tables); images 1 seed (the shared 2-vCPU
    machine's budget: one cGAN fit took 6-7 min there), 600 cGAN steps, 300 CNN steps, 50
    extra images per class. Quick: breast 10 %, 1 seed, 20 steps; images
    5 per class, 30 cGAN steps, 30 CNN steps."""
    import torch

    n_seeds = seeds or (1 if quick else 5)
    steps = 20 if quick else 300
    img = {"seeds": 1, "gan_steps": 30 if quick else 600}
    img.update(cnn_steps=30 if quick else 300, extra=50)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        runs, notes = run_tables(n_seeds, steps, ["breast 10%"] if quick else None)
        tables_seconds = time.perf_counter() - start
        image_runs = run_images(sizes=(5,) if quick else PER_CLASS, **img)
    finally:
        torch.set_num_threads(threads)
    result = summarise_tables(runs)
    img_table, img_result = images_text(image_runs)
    table = table_text(result["summary"], result["goals"])
    return {
        "protocol": {
            "tables": list(runs),
            "seeds": n_seeds,
            "gan_steps": steps,
            "split": "stratified 70/30; training minority subsampled to the share",
            "downstream": "StandardScaler+LogisticRegression; RandomForest(100); "
            "GradientBoosting (defaults)",
            "images": img,
            "notes": notes,
            "seconds": {"tables": tables_seconds, "all": time.perf_counter() - start},
        },
        "runs": runs,
        **result,
        "images": {"runs": image_runs, **img_result},
        "table": table + "\n\nimages (digits, small CNN, test accuracy):\n" + img_table,
    }


def picture(path: str | Path, steps: int = 300, seed: int = 0) -> Path:
    """docs/images/augment-breast.png: breast_cancer at 10 % minority (the bench's split of
    `seed`): the real malignant training rows and the rows GANOverSampler and SMOTE add for
    them, beside the real benign rows, on mean radius × mean texture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from imblearn.over_sampling import SMOTE

    from gankit.augment import GANOverSampler

    X, y = load_binary("breast")
    X_tr, y_tr, _, _ = split(X, y, seed, 0.10)
    n = len(y_tr)
    added = {
        f"GANOverSampler (TabularGAN, {steps} steps)": GANOverSampler(
            random_state=seed, n_steps=steps
        ).fit_resample(X_tr, y_tr)[0][n:],
        "SMOTE": SMOTE(random_state=seed).fit_resample(X_tr, y_tr)[0][n:],
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True, sharey=True)
    for ax, (name, rows) in zip(axes, added.items(), strict=True):
        benign, malignant = X_tr[y_tr == 0], X_tr[y_tr == 1]
        ax.scatter(benign[:, 0], benign[:, 1], s=8, c="#bbbbbb", label="benign (real)")
        ax.scatter(rows[:, 0], rows[:, 1], s=10, c="#e69f00", alpha=0.6, label="malignant (added)")
        ax.scatter(
            malignant[:, 0],
            malignant[:, 1],
            s=28,
            c="#d62728",
            marker="x",
            label=f"malignant (real, {len(malignant)})",
        )
        ax.set_title(name)
        ax.set_xlabel("mean radius")
    axes[0].set_ylabel("mean texture")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle("breast_cancer, minority at 10 % of the training rows: real vs added malignant")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
