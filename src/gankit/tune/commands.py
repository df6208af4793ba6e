"""`gankit tune` on the command line, and the entry point of its extra worker processes."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from gankit.errors import (
    GankitError,
)
from gankit.tune.metrics import METRICS
from gankit.tune.space import SAMPLERS
from gankit.tune.storage import HEARTBEAT, masked
from gankit.tune.study import TuneSettings, tune, work

HELP = "search hyper-parameters with Optuna, write the best recipe"


def register(subparsers) -> None:
    """Add `gankit tune` to the `gankit` parser."""
    p = subparsers.add_parser(
        "tune",
        help=HELP,
        description="Run an Optuna study over config keys; each trial is a run directory "
        "OUT/trial-NNNN; the best config is written to OUT/best.yaml (see docs/tuning.md).",
    )
    p.add_argument("config", help="YAML recipe to start from")
    p.add_argument("--space", required=True, help="YAML search space over config keys")
    p.add_argument("--trials", type=int, required=True, help="trials in the study (all workers)")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    p.add_argument(
        "--metric", required=True, help=f"what to optimise: {', '.join(METRICS)} (per data)"
    )
    p.add_argument("--direction", choices=("minimize", "maximize"), help="default: the metric's")
    p.add_argument(
        "--storage",
        help="study database URL: sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB "
        "(default: sqlite OUT/study.db)",
    )
    p.add_argument(
        "--study",
        help="study name (default: the config's file name); workers "
        "with the same storage and name share the study",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--out", default="runs/tune", help="directory of trials and results")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override applied to every trial (repeatable)",
    )
    p.add_argument(
        "--prune-every",
        type=int,
        help="steps between intermediate evaluations for pruning (default: steps/5; 0: off)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument(
        "--heartbeat",
        type=int,
        default=HEARTBEAT,
        help="seconds between a running trial's heartbeats; a trial silent for twice this is "
        "failed and run again",
    )
    p.set_defaults(handler=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    result = tune(
        args.config,
        args.space,
        n_trials=args.trials,
        metric=args.metric,
        sampler=args.sampler,
        direction=args.direction,
        storage=args.storage,
        study_name=args.study,
        workers=args.workers,
        out=args.out,
        overrides=args.overrides,
        prune_every=args.prune_every,
        seed=args.seed,
        heartbeat=args.heartbeat,
        command=_command_line(args),
    )
    counts: dict[str, int] = {}
    for t in result.study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    print(
        f"{sum(counts.values())} trials ({', '.join(f'{v} {k}' for k, v in counts.items())}) in "
        f"{result.seconds:.1f} s; best {args.metric} = {result.best_value:.6g} with "
        f"{json.dumps(result.best_params)}"
    )
    print(f"best recipe: {result.best_config}  summary: {result.summary}")
    return 0


def _command_line(args: argparse.Namespace) -> str:
    parts = ["gankit", "tune", args.config, "--space", args.space, "--trials", str(args.trials)]
    parts += ["--sampler", args.sampler, "--metric", args.metric]
    for flag in ("direction", "study", "prune_every"):
        if getattr(args, flag) is not None:
            parts += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.storage:
        parts += ["--storage", masked(args.storage) or ""]
    parts += ["--workers", str(args.workers), "--out", args.out, "--seed", str(args.seed)]
    for item in args.overrides:
        parts += ["--set", item]
    return shlex.join(parts)


def worker_main(argv: list[str]) -> int:
    """`python -m gankit.tune --worker JSON`: one extra worker of `gankit tune --workers K`."""
    if len(argv) != 2 or argv[0] != "--worker":
        print("usage: python -m gankit.tune --worker SETTINGS_JSON", file=sys.stderr)
        return 2
    try:
        work(TuneSettings(**json.loads(argv[1])))
    except GankitError as exc:
        print(f"gankit: error: {exc}", file=sys.stderr)
        return 2
    return 0
