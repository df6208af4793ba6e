"""Downstream check of GANOverSampler (issue 14, first slice): breast_cancer, the minority class
(malignant) of the training part subsampled to 10 % of the training rows; a RandomForest trained
on real / real + SMOTE / real + GANOverSampler, scored on one fixed, untouched test split.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/augment_breast.py --seeds 3 --steps 300
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from imblearn.over_sampling import SMOTE
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from gankit.augment import GANOverSampler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--share", type=float, default=0.10, help="minority share of training")
    args = parser.parse_args()
    X, y = load_breast_cancer(return_X_y=True)
    minority = 0  # malignant: 212 of 569
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    methods = {
        "real": lambda s: None,
        "real + SMOTE": lambda s: SMOTE(random_state=s),
        "real + GANOverSampler": lambda s: GANOverSampler(random_state=s, n_steps=args.steps),
        "real + GANOverSampler (classifier filter)": lambda s: GANOverSampler(
            random_state=s, n_steps=args.steps, filter="classifier"
        ),
    }
    rows = {m: [] for m in methods}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        majority_idx = np.flatnonzero(y_tr != minority)
        n_min = round(args.share * len(majority_idx) / (1 - args.share))
        minority_idx = rng.choice(np.flatnonzero(y_tr == minority), n_min, replace=False)
        idx = np.concatenate([majority_idx, minority_idx])
        Xs, ys = X_tr[idx], y_tr[idx]
        for name, make in methods.items():
            start = time.perf_counter()
            sampler = make(seed)
            Xa, ya = (Xs, ys) if sampler is None else sampler.fit_resample(Xs, ys)
            forest = RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)
            pred = forest.fit(Xa, ya).predict(X_te)
            rows[name].append(
                {
                    "seed": seed,
                    "balanced_accuracy": balanced_accuracy_score(y_te, pred),
                    "minority_f1": f1_score(y_te, pred, pos_label=minority),
                    "seconds": time.perf_counter() - start,
                }
            )
            print(json.dumps({"method": name, **rows[name][-1]}), flush=True)
        print(f"seed {seed}: {len(majority_idx)} benign + {n_min} malignant training rows")
    print("| method | balanced accuracy | minority F1 | s / fit |")
    print("|---|---|---|---|")
    for name, runs in rows.items():
        cells = []
        for key in ("balanced_accuracy", "minority_f1"):
            v = np.array([r[key] for r in runs])
            cells.append(f"{v.mean():.3f} ± {v.std(ddof=1) / np.sqrt(len(v)):.3f}")
        secs = np.mean([r["seconds"] for r in runs])
        print(f"| {name} | {cells[0]} | {cells[1]} | {secs:.1f} |")


if __name__ == "__main__":
    main()
