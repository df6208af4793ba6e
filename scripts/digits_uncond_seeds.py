"""Train and score unconditional digits recipes one seed at a time (issue 12, digits quality).

`gankit bench digits` writes its JSON only when every seed of every row is done; on a loaded
2-core machine that can outlast a session. This script trains one config (with overrides) per
job exactly as the benchmark does (`gankit.bench.images.train_recipe`: the recipe's steps,
`train.seed=SEED`, 1,800 samples from noise seed 2333 — a self-conditioned model draws its
clusters from the saved prior, no rejection) and scores them with `gankit.bench.digits`'s
`score_chunks` (5 disjoint sets of 360 against the train split), appending one JSON line per
finished seed with wall and CPU seconds, so a cut-off run keeps what it measured.

    python scripts/digits_uncond_seeds.py OUT.jsonl CONFIG SEED [SEED ...] [--set KEY=VALUE ...]

CONFIG is a file name under configs/ (e.g. digits-selfcond.yaml).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from gankit.bench.digits import CHUNKS, score_chunks
from gankit.bench.images import Recipe, train_recipe
from gankit.data import load_digits


def main(out: str, config: str, seeds: list[int], overrides: list[str]) -> None:
    """Train and score `config` for each seed; one JSON line per seed appended to `out`."""
    torch.set_num_threads(1)
    real, _ = load_digits("train")
    held, _ = load_digits("test")
    recipe = Recipe(config, config, overrides)
    for seed in seeds:
        cpu0 = time.process_time()
        rows, took = train_recipe(recipe, seed, [], len(held) * CHUNKS)
        samples = rows[recipe.name][0]
        scores = score_chunks(samples, real, held)
        record = {
            "config": config,
            "overrides": overrides,
            "seed": seed,
            "train_seconds": round(took, 1),
            "cpu_seconds": round(time.process_time() - cpu0, 1),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **{k: round(float(v), 4) for k, v in scores.items()},
        }
        with Path(out).open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def _parse(argv: list[str]) -> tuple[str, str, list[int], list[str]]:
    args, overrides = [], []
    it = iter(argv)
    for arg in it:
        if arg == "--set":
            overrides.append(next(it))
        else:
            args.append(arg)
    if len(args) < 3:
        raise SystemExit(__doc__)
    return args[0], args[1], [int(s) for s in args[2:]], overrides


if __name__ == "__main__":
    main(*_parse(sys.argv[1:]))
