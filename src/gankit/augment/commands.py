"""`gankit augment`: over-sample the rare classes of a CSV with generated rows."""

from __future__ import annotations

import argparse

HELP = "add generated rows of the rare classes to a CSV (GANOverSampler)"


def register(subparsers) -> None:
    """Add `augment` to the `gankit` parser."""
    p = subparsers.add_parser("augment", help=HELP)
    p.add_argument("data", help="CSV table with a target column (complete: no missing values)")
    p.add_argument("--target", required=True, help="the class column")
    p.add_argument("--out", required=True, help="augmented CSV to write (original rows first)")
    p.add_argument(
        "--strategy",
        default="auto",
        help="auto (default), minority, 'not majority', 'not minority', all, a ratio in (0, 1] "
        "(binary), or CLASS=COUNT pairs such as 1=300 (as imbalanced-learn's sampling_strategy)",
    )
    p.add_argument("--generator", choices=("gan", "vae"), default="gan")
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--filter",
        choices=("classifier",),
        help="keep only rows a random forest on the real rows assigns to their class",
    )
    p.add_argument("--confidence", type=float, default=0.5, help="the filter's threshold")
    p.set_defaults(handler=cmd_augment)


def cmd_augment(args: argparse.Namespace) -> int:
    from gankit.augment.oversampler import augment_csv

    rows = augment_csv(
        args.data,
        args.target,
        args.out,
        strategy=args.strategy,
        generator=args.generator,
        steps=args.steps,
        seed=args.seed,
        filter=args.filter,
        confidence=args.confidence,
    )
    width = max(len("class"), *(len(str(r["class"])) for r in rows))
    print(f"{'class':<{width}}  {'before':>7}  {'added':>7}  {'after':>7}")
    for r in rows:
        print(f"{r['class']!s:<{width}}  {r['before']:>7}  {r['added']:>7}  {r['after']:>7}")
    print(f"wrote {args.out}: {sum(r['after'] for r in rows)} rows")
    return 0
