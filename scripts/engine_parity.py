"""Old loops vs the common engine, measured in the same run (issue 10, "behaviour preserved").

    python scripts/engine_parity.py --old-src /tmp/gankit-old/src --out parity.json [--part P]

`--old-src` is the `src` folder of a checkout of the commit before the engine (0123187): each
measurement runs in a fresh subprocess with PYTHONPATH set to the old or the new `src`,
alternating old/new so both see the same machine load. One torch thread per process.

Parts: `bitident` (ring best recipe, seed 2, 6,000 steps: SHA-256 of G), `tabspeed` (TabularGAN
ms/step on breast, 200 steps after a warm-up; use --repeat 3), `speed` (DCGAN steps per
CPU-second through the library's training step; TabularGAN ms/step on breast; a GANImputer fit
on breast), `impute` (20% MCAR RMSE, breast/wine/iris,
seeds 0-2, GANImputer and the GAIN baseline on seed 0), `synth` (breast and wine, seeds 0-1,
600 steps: utility, fidelity, DCR), `gain` (the GAIN baseline, breast and wine, seeds 0-2),
`ring` and `grid` (the best recipes, seeds 0-2, new engine only: the committed 5-seed rows are
the old side).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

NEW_SRC = Path(__file__).resolve().parents[1] / "src"

SPEED = """
import time, torch, numpy as np
from gankit.config import load_config
from gankit.demo import demo_config
cfg = load_config(demo_config(), ["train.progress=false", "train.ema=0"])
try:
    from gankit.engine.runs import build_trainer
    trainer = build_trainer(cfg, None); step = trainer.run_step
except ImportError:
    from gankit.train import Trainer
    trainer = Trainer(cfg, "/tmp/parity-old-trainer"); step = trainer.train_step
for _ in range(5): step()
rates = []
for _ in range(5):
    t = time.process_time()
    for _ in range(40): step()
    rates.append(40 / (time.process_time() - t))
from sklearn.datasets import load_breast_cancer
from gankit.tabular import GANImputer, TabularGAN
import pandas as pd
data = load_breast_cancer(as_frame=True).frame
t = time.process_time()
m = TabularGAN(n_steps=200, random_state=0).fit(data, ["target"])
synth_ms = 1000 * m.train_seconds_ / 200
x = data.drop(columns="target").to_numpy()
rng = np.random.default_rng(0)
holed = np.where(rng.random(x.shape) < 0.2, np.nan, x)
t = time.process_time()
GANImputer(random_state=0).fit(holed)
fit_cpu = time.process_time() - t
RESULT = {"dcgan_steps_per_cpu_s": sorted(rates)[2], "tabgan_ms_per_step": synth_ms,
          "imputer_fit_cpu_s_breast": fit_cpu}
"""

IMPUTE = """
import time, numpy as np
from gankit.bench.impute import DATASETS, make_missing, scaled_rmse
from gankit.tabular import GANImputer
from gankit.tabular.gain import gain_impute
RESULT = {}
for name in ("breast", "wine", "iris"):
    x = DATASETS[name]().data.astype(np.float64)
    for seed in range(3):
        observed = make_missing(x, "mcar", 0.2, seed)
        holed = np.where(observed, x, np.nan)
        t = time.process_time()
        model = GANImputer(random_state=seed).fit(holed)
        filled = model.transform(holed)
        RESULT[f"gankit/{name}/{seed}"] = {"rmse": scaled_rmse(x, filled, observed),
            "cpu_s": time.process_time() - t, "best_step": model.best_step_}
    observed = make_missing(x, "mcar", 0.2, 0)
    holed = np.where(observed, x, np.nan)
    t = time.process_time()
    RESULT[f"gain/{name}/0"] = {"rmse": scaled_rmse(x, gain_impute(holed, seed=0), observed),
                                "cpu_s": time.process_time() - t}
"""

SYNTH = """
import time
from sklearn.model_selection import train_test_split
from gankit.bench.synth import load_table, scores, utility
from gankit.tabular import TabularGAN
RESULT = {}
for name in ("breast", "wine"):
    table = load_table(name)
    for seed in range(2):
        train, test = train_test_split(table, test_size=0.3, random_state=seed,
                                       stratify=table["target"])
        model = TabularGAN(n_steps=600, random_state=seed).fit(train, ["target"], holdout=test)
        row = scores(model, model.sample(len(train), seed=seed), train, test, seed)
        row["ms_per_step"] = 1000 * model.train_seconds_ / 600
        RESULT[f"{name}/{seed}"] = row
"""

MIXTURE = """
from gankit.bench import grid, ring
from gankit.bench.mixture import protocol_recipes, run_mixture
from gankit.data.toy import GRID_PRESET, RING_PRESET, grid_means, ring_means
LAYOUTS = {
    "ring": (ring_means(RING_PRESET["modes"], RING_PRESET["radius"]), RING_PRESET["std"],
             ring.PUBLISHED),
    "grid": (grid_means(GRID_PRESET["size"], GRID_PRESET["spacing"]), GRID_PRESET["std"],
             grid.PUBLISHED),
}
means, std, published = LAYOUTS[NAME]
best = [r for r in protocol_recipes(NAME) if r.name == "best recipe"]
out = run_mixture(NAME, means, std, best, published, False, 3, None, None)
RESULT = {k: out[k] for k in ("measured", "table", "train_seconds")}
"""

GAIN = """
import numpy as np
from gankit.bench.impute import DATASETS, make_missing, scaled_rmse
from gankit.tabular.gain import gain_impute
RESULT = {}
for name in ("breast", "wine"):
    x = DATASETS[name]().data.astype(np.float64)
    for seed in range(3):
        observed = make_missing(x, "mcar", 0.2, seed)
        holed = np.where(observed, x, np.nan)
        RESULT[f"{name}/{seed}"] = scaled_rmse(x, gain_impute(holed, seed=seed), observed)
"""

BITIDENT = """
import hashlib
from gankit.config import load_config
cfg = load_config("configs/ring-best.yaml", ["train.seed=2", "data.seed=2", "train.progress=false",
    "train.checkpoint_every=6000", "train.sample_every=6000", "train.log_every=30"])
try:
    from gankit.engine.runs import build_trainer
    t = build_trainer(cfg, None); t.fit(); g = t.model.sampling_network("g")
except ImportError:
    import tempfile
    from gankit.train import Trainer
    t = Trainer(cfg, tempfile.mkdtemp()); t.fit()
    g = t.ema.shadow if t.ema is not None else t.generator
blob = b"".join(p.detach().numpy().tobytes() for p in g.state_dict().values())
RESULT = {"sha256_g": hashlib.sha256(blob).hexdigest()}
"""

TABSPEED = """
import time
from sklearn.datasets import load_breast_cancer
from gankit.tabular import TabularGAN
data = load_breast_cancer(as_frame=True).frame
TabularGAN(n_steps=2, random_state=0).fit(data, ["target"])
m = TabularGAN(n_steps=200, random_state=0).fit(data, ["target"])
RESULT = {"tabgan_ms_per_step": 1000 * m.train_seconds_ / 200}
"""

PARTS = {
    "bitident": BITIDENT,
    "tabspeed": TABSPEED,
    "speed": SPEED,
    "impute": IMPUTE,
    "gain": GAIN,
    "synth": SYNTH,
    "ring": 'NAME = "ring"\n' + MIXTURE,
    "grid": 'NAME = "grid"\n' + MIXTURE,
}


def measure(src: Path, code: str) -> dict:
    """Run `code` (which sets RESULT) with gankit imported from `src`; its RESULT."""
    wrapper = code + "\nimport json, sys\nsys.stdout.write('\\nRESULT ' + json.dumps(RESULT))\n"
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    boot = "import torch; torch.set_num_threads(1)\n" + textwrap.dedent(wrapper)
    out = subprocess.run(
        [sys.executable, "-c", boot], env=env, capture_output=True, text=True, check=True
    )
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-src", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--part", action="append", choices=sorted(PARTS))
    parser.add_argument("--repeat", type=int, default=1, help="alternate old/new this many times")
    parser.add_argument("--only", choices=("old", "new"), help="measure one side only")
    args = parser.parse_args()
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for part in args.part or list(PARTS):
        mixture = part in ("ring", "grid")  # the committed 5-seed rows are the old side
        trees = {"new": NEW_SRC} if mixture else {"old": args.old_src, "new": NEW_SRC}
        if args.only:
            trees = {args.only: trees[args.only]}
        runs: dict[str, list] = {tree: [] for tree in trees}
        for _ in range(args.repeat):
            for tree, src in trees.items():
                print(f"{part}: {tree} ...", file=sys.stderr, flush=True)
                runs[tree].append(measure(src, PARTS[part]))
                done = {t: r[0] if args.repeat == 1 else r for t, r in runs.items() if r}
                results[part] = {**results.get(part, {}), **done}
                args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
