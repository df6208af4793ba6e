"""The tuning benchmark of issue 17 (docs/benchmarks.md, "tune"), at a reduced budget.

1. A TPE study of `--trials` trials from the default ring config (configs/ring-gan.yaml, the
   VEEGAN-protocol plain GAN) over configs/spaces/ring.yaml, each trial `--steps` steps, scored
   by modes_hq (2,500 samples, seed 2333, no rejection).
2. The study's best.yaml and the hand-made configs/ring-best.yaml, both at `--steps` steps,
   trained on `--seeds` seeds and scored as `gankit bench ring` scores its rows without
   rejection (train.seed = data.seed = seed; 2,500 samples of the final generator, seed 2333).
3. Wall time of the same small study (`--speed-trials` trials of `--speed-steps` steps, random
   sampler, no pruning) with 1 and with 2 worker processes, OMP_NUM_THREADS=1 each.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/tune_benchmark.py --out /tmp/tune-bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GANKIT = [sys.executable, "-m", "gankit.cli"]


def run(cmd: list[str]) -> float:
    print("+", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - start


def score(config: Path, steps: int, seeds: int) -> dict:
    from gankit.bench.common import mean_se
    from gankit.bench.images import Recipe, train_recipe
    from gankit.bench.mixture import N_SAMPLES, SCORE_SEED
    from gankit.metrics import mixture_modes
    from gankit.metrics.evaluate import toy_mixture

    per_seed = []
    for seed in range(seeds):
        rows, took = train_recipe(
            Recipe(config.name, str(config)), seed, [f"train.steps={steps}"], N_SAMPLES, SCORE_SEED
        )
        ((samples, _),) = rows.values()
        from gankit.config import load_config, to_dict

        means, std = toy_mixture(to_dict(load_config(config))["data"])
        m = mixture_modes(samples, means, std)
        per_seed.append({k: m[k] for k in ("modes", "hq_percent", "reverse_kl")} | {"s": took})
        print(config.name, seed, per_seed[-1], flush=True)
    out = {"per_seed": per_seed}
    for key in ("modes", "hq_percent", "reverse_kl"):
        mean, se = mean_se([p[key] for p in per_seed])
        out[key] = {"mean": mean, "se": se}
    return out


def study_part(args: argparse.Namespace, study: Path, tune_cmd: list[str], result: dict) -> None:
    """The TPE study, then its best recipe and the hand-made one scored on fresh seeds."""
    if not args.skip_study:
        shutil.rmtree(study, ignore_errors=True)
        result["study_seconds"] = run(tune_cmd)
    result["study_command"] = " ".join(["gankit", *tune_cmd[3:]])
    summary = json.loads((study / "tune.json").read_text())
    result["study"] = {
        "best": summary["best"],
        "states": {
            s: sum(t["state"] == s for t in summary["trials"])
            for s in ("complete", "pruned", "fail")
        },
        "importance": summary["importance"],
    }
    result["tuned"] = score(study / "best.yaml", args.steps, args.seeds)
    result["hand_made"] = score(ROOT / "configs" / "ring-best.yaml", args.steps, args.seeds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/tune-bench")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--speed-trials", type=int, default=8)
    ap.add_argument("--speed-steps", type=int, default=600)
    ap.add_argument("--skip-study", action="store_true")
    ap.add_argument("--workers-only", action="store_true", help="only the 1- vs 2-worker timing")
    ap.add_argument("--study-only", action="store_true", help="skip the 1- vs 2-worker timing")
    ap.add_argument("--study-workers", type=int, default=1, help="worker processes for the study")
    args = ap.parse_args()
    out = Path(args.out)
    result: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv])}
    study = out / "study"
    tune_cmd = [
        *GANKIT, "tune", "configs/ring-gan.yaml", "--space", "configs/spaces/ring.yaml",
        "--trials", str(args.trials), "--sampler", "tpe", "--metric", "modes_hq",
        "--set", f"train.steps={args.steps}", "--set", "train.checkpoint_every=100000",
        "--set", "train.sample_every=100000", "--out", str(study), "--seed", "0",
        "--workers", str(args.study_workers),
    ]  # fmt: skip
    if not args.workers_only:
        study_part(args, study, tune_cmd, result)
    speed = {}
    for workers in () if args.study_only else (1, 2):
        d = out / f"speed-{workers}"
        shutil.rmtree(d, ignore_errors=True)
        speed[workers] = run(
            [
                *GANKIT, "tune", "configs/ring-gan.yaml", "--space", "configs/spaces/ring.yaml",
                "--trials", str(args.speed_trials), "--sampler", "random", "--metric", "modes",
                "--prune-every", "0", "--set", f"train.steps={args.speed_steps}",
                "--workers", str(workers), "--out", str(d),
            ]
        )  # fmt: skip
    if speed:
        result["workers_seconds"] = speed
        result["workers_ratio"] = speed[2] / speed[1]
    result["environment"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": vars(args),
    }
    (out / "tune-bench.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
