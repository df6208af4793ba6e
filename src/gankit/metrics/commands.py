"""Subcommands `gankit eval RUN` and `gankit report RUN`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `eval` and `report` to the `gankit` parser."""
    from gankit.commands import add_min_acceptance
    from gankit.metrics.records import ALL_METRICS

    p = subparsers.add_parser("eval", help="compute metrics of a trained run, write eval.json")
    p.add_argument("run", help="run or model directory")
    p.add_argument(
        "--metrics",
        nargs="+",
        choices=ALL_METRICS,
        metavar="NAME",
        help=f"subset of: {' '.join(ALL_METRICS)} (default: all that apply)",
    )
    p.add_argument("--n", type=int, default=10000, help="generated samples (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--inception-weights",
        metavar="PATH",
        help="pt_inception-2015-12-05 weights, for image data other than digits",
    )
    p.add_argument(
        "--rejection",
        action="store_true",
        help="score samples drawn by discriminator rejection sampling (docs/recipes.md)",
    )
    p.add_argument(
        "--rejection-quantile",
        type=float,
        default=1.0,
        metavar="Q",
        help="with --rejection: always keep the top 1-Q of draws (caps the ratio; default 1)",
    )
    add_min_acceptance(p)
    p.set_defaults(handler=cmd_eval)

    p = subparsers.add_parser("report", help="write a self-contained report.html for a run")
    p.add_argument("run", help="run directory")
    p.add_argument("--n", type=int, default=2000, help="generated samples for the figures")
    p.set_defaults(handler=cmd_report)


def cmd_eval(args: argparse.Namespace) -> int:
    import sys

    from gankit.commands import print_estimate
    from gankit.metrics.evaluate import evaluate, format_records

    records = evaluate(
        args.run,
        args.metrics,
        n=args.n,
        seed=args.seed,
        inception_weights=args.inception_weights,
        rejection=args.rejection,
        rejection_quantile=args.rejection_quantile,
        min_acceptance=args.min_acceptance,
        on_estimate=print_estimate if args.rejection else None,
        progress=sys.stderr.isatty(),
    )
    print(format_records(records))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from gankit.report import write_report

    print(write_report(args.run, n=args.n))
    return 0
