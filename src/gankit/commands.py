"""Core subcommands: train, sample, demo, bench, check, eval, report.

This module is imported to build the parser, so it imports nothing heavy at the top (not even
the gankit.metrics package, which imports torch): each handler imports the library it calls.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gankit.errors import ConfigError
from gankit.metric_names import ALL_METRICS


def register(subparsers) -> None:
    """Add the core subcommands to the `gankit` parser."""
    p = subparsers.add_parser("train", help="train a GAN from a YAML recipe, or resume a run")
    p.add_argument("config", nargs="?", help="YAML recipe (see configs/)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.steps=500 (repeatable)",
    )
    p.add_argument("--out", help="run directory (default: the config's `out`)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run")
    p.set_defaults(handler=cmd_train)

    p = subparsers.add_parser("sample", help="write samples of a trained generator as a PNG grid")
    p.add_argument("run", help="run or model directory")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--out", default="samples.png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float)
    p.add_argument(
        "--rejection",
        action="store_true",
        help="keep only samples the saved discriminator finds realistic (docs/recipes.md)",
    )
    p.add_argument(
        "--rejection-quantile",
        type=float,
        default=1.0,
        metavar="Q",
        help="with --rejection: always keep the top 1-Q of draws (caps the ratio; default 1)",
    )
    add_min_acceptance(p)
    p.add_argument(
        "--interpolate",
        action="store_true",
        help="rows of interpolations between random latent codes instead",
    )
    p.add_argument(
        "--labels",
        metavar="K[,K...]",
        help="conditional models: the class of every sample (3), or classes taken in turn "
        "(0,1,2: one grid column per class)",
    )
    p.add_argument(
        "--class-grid",
        action="store_true",
        help="conditional models: one row per class (or per --labels class), --per-row "
        "samples each, one latent code per column",
    )
    p.add_argument("--per-row", type=int, default=10, help="with --class-grid (default 10)")
    p.add_argument(
        "--codes",
        metavar="cat=K,cJ=V",
        help="InfoGAN: fix latent codes, e.g. cat=3,c0=0.5 (the category of the categorical "
        "code, continuous code J set to V; codes not named are drawn)",
    )
    p.add_argument(
        "--traversal",
        metavar="CODE",
        help="InfoGAN: vary one code along each row (cat: every category; cJ: continuous code "
        "J from -2 to 2, 10 steps), the other latents fixed per row; about --n samples",
    )
    p.set_defaults(handler=cmd_sample)

    p = subparsers.add_parser("demo", help="train the digits DCGAN (~2 min) and write pictures")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--steps", type=int, help="override the number of steps")
    p.set_defaults(handler=cmd_demo)

    p = subparsers.add_parser("bench", help="run a benchmark protocol and write NAME.json")
    p.add_argument("name")
    p.add_argument("--quick", action="store_true", help="a small version (< 1 min)")
    p.add_argument("--seeds", type=int)
    p.add_argument("--out", default=".", help="folder for NAME.json")
    p.add_argument("--plots", metavar="DIR", help="ring/grid: folder for the scatter plots")
    p.set_defaults(handler=cmd_bench)

    p = subparsers.add_parser(
        "check", help="verify a model directory (hashes, spec against weights)"
    )
    p.add_argument("model_dir", help="run or model directory")
    p.add_argument(
        "--reseal",
        action="store_true",
        help="record the spec hash of a directory written before gankit sealed model.json "
        "(only for a directory you trust: its spec becomes the reference)",
    )
    p.set_defaults(handler=cmd_check)

    p = subparsers.add_parser(
        "translate", help="translate images with a trained CycleGAN (A <-> B)"
    )
    p.add_argument("model_dir", help="CycleGAN run or model directory")
    p.add_argument("--in", dest="src", required=True, help="an image file or a folder of them")
    p.add_argument("--out", required=True, help="a .png file (one input) or a folder")
    p.add_argument("--direction", choices=("a2b", "b2a"), default="a2b")
    p.set_defaults(handler=cmd_translate)

    p = subparsers.add_parser(
        "encode", help="encode images with a model's encoder (VAE, VAE-GAN, BiGAN), write .npy"
    )
    p.add_argument("model_dir", help="model directory of a kind with an encoder")
    p.add_argument(
        "--in",
        dest="inputs",
        required=True,
        metavar="PATH",
        help="images.npy ([n, *shape], [n, prod(shape)] or [n, H, W]; float in the model's "
        "range, or uint8 pixels 0-255) or a folder of images (rows in sorted path order)",
    )
    p.add_argument("--out", default="codes.npy", help="where the codes [n, latent_dim] go")
    p.set_defaults(handler=cmd_encode)

    register_metrics(subparsers)


# the metrics `gankit eval` offers (a light module: building the parser imports no torch)
EVAL_METRICS = ALL_METRICS


def register_metrics(subparsers) -> None:
    """Add `eval` and `report` to the `gankit` parser."""
    p = subparsers.add_parser("eval", help="compute metrics of a trained run, write eval.json")
    p.add_argument("run", help="run or model directory")
    p.add_argument(
        "--metrics",
        nargs="+",
        choices=EVAL_METRICS,
        metavar="NAME",
        help=f"subset of: {' '.join(EVAL_METRICS)} (default: all that apply)",
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


def add_min_acceptance(p: argparse.ArgumentParser) -> None:
    """`--min-acceptance`, shared by `gankit sample` and `gankit eval`."""
    p.add_argument(
        "--min-acceptance",
        type=float,
        default=1e-3,
        metavar="F",
        help="with --rejection: refuse to sample when fewer than this fraction of draws would "
        "be kept (default 1e-3; the grid benchmark needs 1e-5, see README). The cost estimate "
        "is printed before sampling starts",
    )


def rejection_options(args: argparse.Namespace) -> dict:
    """The sampling options `gankit sample` and `gankit eval` pass on: rejection sampling with
    its quantile and floor, the cost estimate on stderr, a progress bar on a terminal."""
    return {
        "rejection": args.rejection,
        "rejection_quantile": args.rejection_quantile,
        "min_acceptance": args.min_acceptance,
        "on_estimate": print_estimate if args.rejection else None,
        "progress": sys.stderr.isatty(),
    }


def print_estimate(estimate) -> None:
    """Print a rejection sampler's cost estimate (stderr: stdout carries the results)."""
    print(estimate.describe(), file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from gankit.config import load_config
    from gankit.engine import resume, train

    if args.resume:
        if args.config:
            raise ConfigError("give either a config or --resume RUN_DIR, not both")
        run = resume(args.resume, args.overrides)
    else:
        if not args.config:
            raise ConfigError("a config file is required (or --resume RUN_DIR)")
        run = train(load_config(args.config, args.overrides), args.out)
    print(f"trained to step {run.step}: {run.path}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.registry import load_sampler
    from gankit.viz import make_grid, plot_points, save_image

    gen = load_sampler(args.run)  # a GAN generator or a VAE
    classes = parse_labels(args.labels)
    if args.codes is not None or args.traversal is not None:
        images, nrow = code_samples(gen, args)
    elif args.class_grid:
        images = gen.class_grid(args.per_row, seed=args.seed, classes=classes)
        nrow = args.per_row
    elif args.interpolate:
        import torch

        if classes is not None and len(classes) > 1:
            raise ConfigError("--interpolate takes one --labels class")
        label = None if classes is None else classes[0]
        rows = max(1, args.n // 10)
        images = torch.cat(
            [gen.interpolate(10, seed=args.seed + r, label=label) for r in range(rows)]
        )
        nrow = 10
    elif classes is not None:
        if args.rejection:
            raise ConfigError("--rejection takes no --labels (rejection sampling is unconditional)")
        labels = (
            classes[0] if len(classes) == 1 else [classes[i % len(classes)] for i in range(args.n)]
        )
        images = gen.sample(args.n, seed=args.seed, truncation=args.truncation, labels=labels)
        nrow = len(classes) if len(classes) > 1 else None
    else:
        images = gen.sample(
            args.n,
            seed=args.seed,
            truncation=args.truncation,
            **rejection_options(args),
        )
        nrow = None
        if args.rejection:
            sampler = gen.rejection_sampler(args.rejection_quantile, args.min_acceptance)
            print(f"rejection sampling kept {sampler.acceptance:.3g} of draws")
    if gen.is_image:
        save_image(make_grid(images, nrow=nrow), args.out, scale=max(1, 64 // images.shape[-1]))
    else:
        plot_points(images, args.out)
    print(Path(args.out))
    return 0


def parse_labels(text: str | None) -> list[int] | None:
    """`--labels 3` or `--labels 0,1,2` -> [3] or [0, 1, 2] (ConfigError for anything else)."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(
            f"--labels {text!r}: expected a class number or comma-separated class numbers"
        ) from None


def code_samples(gen, args: argparse.Namespace) -> tuple:
    """`gankit sample --codes` / `--traversal` (InfoGAN): the samples and the grid's row length."""
    layout = getattr(gen, "codes", None)
    if layout is None:
        raise ConfigError(
            f"--codes/--traversal: {args.run} has no latent codes (InfoGAN models only)"
        )
    given = {
        "--codes": args.codes is not None,
        "--traversal": args.traversal is not None,
        "--labels": args.labels is not None,
        "--class-grid": args.class_grid,
        "--interpolate": args.interpolate,
        "--rejection": args.rejection,
    }
    if sum(map(bool, given.values())) > 1:
        both = " and ".join(name for name, value in given.items() if value)
        raise ConfigError(f"{both} cannot be combined; give --codes or --traversal alone")
    if args.codes is not None:
        codes = parse_codes(args.codes, layout)
        return gen.sample(args.n, seed=args.seed, truncation=args.truncation, codes=codes), None
    code = parse_code_name(args.traversal, layout, "--traversal")
    steps = layout["categorical"] if code == "categorical" else 10
    images = gen.traversal(code, steps=steps, rows=max(1, args.n // steps), seed=args.seed)
    return images, steps


def parse_code_name(name: str, layout: dict, option: str) -> str | int:
    """`cat` (or `categorical`) -> "categorical"; `cJ` -> J, checked against the code layout."""
    k, c = layout["categorical"], layout["continuous"]
    valid = ", ".join([*(["cat"] if k else []), *(f"c{j}" for j in range(c))])
    if name in ("cat", "categorical") and k:
        return "categorical"
    if name[:1] == "c" and name[1:].isdigit() and int(name[1:]) < c:
        return int(name[1:])
    raise ConfigError(f"{option}: unknown code {name!r}; this model's codes are {valid}")


def parse_codes(text: str, layout: dict) -> dict:
    """`cat=3,c1=0.5` -> {"categorical": 3, "continuous": [None, 0.5]} (codes not named are
    drawn); ConfigError for unknown codes, categories out of range and non-finite values."""
    import math

    k, c = layout["categorical"], layout["continuous"]
    codes: dict = {}
    continuous: list = [None] * c
    for part in text.split(","):
        name, sep, value = part.partition("=")
        code = parse_code_name(name.strip(), layout, "--codes") if sep else None
        if code is None:
            raise ConfigError(f"--codes {text!r}: expected NAME=VALUE pairs, e.g. cat=3,c0=0.5")
        if code == "categorical":
            if not value.strip().isdigit() or int(value) >= k:
                raise ConfigError(f"--codes {part!r}: the category must be one of 0..{k - 1}")
            codes["categorical"] = int(value)
            continue
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ConfigError(f"--codes {part!r}: a continuous code takes a finite number")
        continuous[code] = number
    if any(v is not None for v in continuous):
        codes["continuous"] = continuous
    return codes


def cmd_demo(args: argparse.Namespace) -> int:
    from gankit.demo import run_demo

    run_demo(args.out, args.steps)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from gankit.bench import run_benchmark

    run_benchmark(args.name, quick=args.quick, seeds=args.seeds, out=args.out, plot_dir=args.plots)
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from gankit.models.cyclegan import translate_files

    written = translate_files(args.model_dir, args.src, args.out, args.direction)
    print(f"translated {len(written)} image(s) {args.direction}: {args.out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import warnings

    from gankit.modeldir import (
        SPEC_HASH_KEY,
        UnsealedSpecWarning,
        check_model_dir,
        reseal_model_dir,
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnsealedSpecWarning)
        spec = check_model_dir(args.model_dir)
    unsealed = any(issubclass(w.category, UnsealedSpecWarning) for w in caught)
    if unsealed and args.reseal:
        spec = reseal_model_dir(args.model_dir)
        unsealed = False
    sealed = "UNSEALED (run with --reseal if you trust it)" if unsealed else "sealed"
    print(
        f"{args.model_dir}: ok, kind {spec.get('kind')}, weights SHA-256 "
        f"{spec['weights_sha256'][:16]}…, spec {sealed}"
        + ("" if unsealed else f" ({spec[SPEC_HASH_KEY][:16]}…)")
    )
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    import io

    import numpy as np

    from gankit.modeldir import atomic_write_bytes
    from gankit.registry import load_encoder

    model = load_encoder(args.model_dir)  # CheckpointError for a model without an encoder
    codes = model.encode(read_encode_input(args.inputs, model)).numpy()
    buffer = io.BytesIO()
    np.save(buffer, codes.astype(np.float32), allow_pickle=False)
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"{args.out}: {codes.shape[0]} codes of size {codes.shape[1]}")
    return 0


def read_encode_input(path: str, model) -> torch.Tensor:  # noqa: F821 (imported inside)
    """Samples for `model.encode` from a .npy file or a folder of images: a float batch
    [n, *shape] in the model's data range (uint8 arrays are read as pixels 0..255); DataError
    for an unreadable file, a wrong shape or non-finite values. Never unpickles."""
    import numpy as np
    import torch

    from gankit.errors import DataError

    shape, source = list(model.output_shape), Path(path)
    if source.is_dir():
        from gankit.data.images import load_image_folder

        if len(shape) != 3:
            raise DataError(f"{source}: a folder of images needs an image model, not {shape}")
        x = load_image_folder(source, shape[-1], shape[0])[0]
    else:
        try:
            array = np.load(source, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{source}: not a readable .npy array ({exc})") from exc
        if array.dtype == np.uint8:
            lo, hi = (model.spec.get("data") or {}).get("range") or (-1.0, 1.0)
            array = lo + (hi - lo) * array.astype(np.float32) / 255.0
        if not np.issubdtype(array.dtype, np.number) or array.ndim < 2:
            raise DataError(
                f"{source}: expected a numeric array [n, ...], got {array.dtype} "
                f"{list(array.shape)}"
            )
        x = torch.as_tensor(array.astype(np.float32))
    n, want = x.shape[0], [x.shape[0], *shape]
    flat_or_hw = x.dim() in (2, len(want) - 1) and x[0].numel() == int(np.prod(shape))
    if list(x.shape) != want and flat_or_hw:
        x = x.reshape(want)  # flattened rows, or [n, H, W] for one channel
    if list(x.shape) != want:
        raise DataError(
            f"{source}: samples of shape {list(x.shape[1:])}; this model encodes "
            f"[n, {', '.join(map(str, shape))}] (or [n, {int(np.prod(shape))}] flattened)"
        )
    if n == 0 or not torch.isfinite(x).all():
        raise DataError(f"{source}: no samples, or NaN / infinite values; encode finite samples")
    return x


def cmd_eval(args: argparse.Namespace) -> int:
    from gankit.metrics.evaluate import evaluate, format_records

    records = evaluate(
        args.run,
        args.metrics,
        n=args.n,
        seed=args.seed,
        inception_weights=args.inception_weights,
        **rejection_options(args),
    )
    print(format_records(records))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from gankit.report import write_report

    print(write_report(args.run, n=args.n))
    return 0
