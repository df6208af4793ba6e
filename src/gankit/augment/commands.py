"""`gankit augment`: generated rows for the rare classes of a CSV, or generated images per class
for a folder with one sub-folder per class; the trained model is kept beside the output."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.errors import ConfigError

HELP = "add generated rows of the rare classes to a CSV, or generated images per class folder"


def register(subparsers) -> None:
    """Add `augment` to the `gankit` parser."""
    p = subparsers.add_parser("augment", help=HELP)
    p.add_argument(
        "data",
        help="a CSV table with a target column (complete: no missing values), or a folder with "
        "one sub-folder of images per class",
    )
    p.add_argument("--target", help="the class column (CSV only)")
    p.add_argument(
        "--out",
        required=True,
        help="augmented CSV to write (original rows first), or the folder of generated images "
        "per class; the trained model goes beside it as OUT.model/",
    )
    p.add_argument(
        "--strategy",
        default="auto",
        help="CSV: auto (default), minority, 'not majority', 'not minority', all, a ratio in "
        "(0, 1] (binary), or CLASS=COUNT pairs such as 1=300 (as imbalanced-learn's "
        "sampling_strategy)",
    )
    p.add_argument("--generator", choices=("gan", "vae"), default="gan", help="CSV: the model")
    p.add_argument(
        "--steps", type=int, help="training steps (default 300 for a CSV, 2000 for images)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--filter",
        action="append",
        choices=("schema", "classifier", "discriminator"),
        help="CSV: check generated rows before adding them (repeatable): schema (valid against "
        "the table), classifier (a forest on the real rows agrees), discriminator (the critic's "
        "top --keep-top share)",
    )
    p.add_argument("--confidence", type=float, default=0.5, help="the classifier's threshold")
    p.add_argument("--keep-top", type=float, default=0.5, help="the discriminator's share")
    p.add_argument("--per-class", type=int, default=100, help="images: generated per class")
    p.add_argument("--image-size", type=int, help="images: resize to this square size")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_augment)


def cmd_augment(args: argparse.Namespace) -> int:
    if Path(args.data).is_dir():
        return _images(args)
    if not args.target:
        raise ConfigError("gankit augment: a CSV needs --target COLUMN (the class column)")
    from gankit.augment.images import model_dir
    from gankit.augment.oversampler import augment_csv

    rows = augment_csv(
        args.data,
        args.target,
        args.out,
        strategy=args.strategy,
        generator=args.generator,
        steps=args.steps or 300,
        seed=args.seed,
        filter=args.filter,
        confidence=args.confidence,
        keep_top=args.keep_top,
        progress=not args.quiet,
    )
    width = max(len("class"), *(len(str(r["class"])) for r in rows))
    print(f"{'class':<{width}}  {'before':>7}  {'added':>7}  {'after':>7}")
    for r in rows:
        print(f"{r['class']!s:<{width}}  {r['before']:>7}  {r['added']:>7}  {r['after']:>7}")
    print(f"wrote {args.out}: {sum(r['after'] for r in rows)} rows; model in {model_dir(args.out)}")
    return 0


def _images(args: argparse.Namespace) -> int:
    from gankit.augment.images import augment_images

    result = augment_images(
        args.data,
        args.out,
        per_class=args.per_class,
        steps=args.steps or 2000,
        seed=args.seed,
        image_size=args.image_size,
        progress=not args.quiet,
    )
    width = max(len("class"), *(len(c) for c in result["classes"]))
    print(f"{'class':<{width}}  {'real':>7}  {'generated':>9}")
    for name, count in result["classes"].items():
        print(f"{name:<{width}}  {result['real'][name]:>7}  {count:>9}")
    print(f"wrote {args.out}/<class>/generated-*.png; model in {result['model']}")
    return 0
