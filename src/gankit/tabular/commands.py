"""`gankit impute` and `gankit synth {fit,sample}`: parse arguments, call one library function."""

from __future__ import annotations

import argparse
import json

from gankit.errors import ConfigError

ID_HELP = (
    "comma-separated identifier / free-text columns (names, ids: a value per row); "
    "left out of the model"
)
DELIMITER_HELP = "CSV delimiter: ',', ';', tab or '|' (default: detected)"


def _delimiter(value: str) -> str:
    value = {"tab": "\t", "\\t": "\t"}.get(value, value)
    if value not in (",", ";", "\t", "|"):
        raise argparse.ArgumentTypeError(f"expected one of ',', ';', tab, '|'; got {value!r}")
    return value


def _names(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


def register(subparsers) -> None:
    """Add the tabular subcommands to the `gankit` parser."""
    add_impute_parser(subparsers)
    synth = subparsers.add_parser("synth", help="fit a tabular GAN or sample a saved one")
    actions = synth.add_subparsers(dest="synth_command", metavar="ACTION", required=True)
    p = actions.add_parser("fit", help="fit a TabularGAN on a CSV and save the model directory")
    p.add_argument("data", help="CSV table (complete: no missing values)")
    p.add_argument(
        "--model",
        choices=("gan", "vae"),
        default="gan",
        help="gan: TabularGAN (CTGAN's recipe, the default); vae: TabularVAE (TVAE)",
    )
    p.add_argument("--discrete", default="", help="comma-separated discrete columns")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--steps", type=int, default=1000, help="optimisation steps (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--id-columns", type=_names, default=[], help=ID_HELP + "; samples get fresh surrogates"
    )
    p.add_argument("--delimiter", type=_delimiter, help=DELIMITER_HELP)
    p.set_defaults(handler=cmd_synth_fit)
    p = actions.add_parser("sample", help="draw rows from a saved TabularGAN or TabularVAE")
    p.add_argument("model", help="model directory written by `gankit synth fit`")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--condition", metavar="COLUMN=VALUE", help="fix one discrete column, e.g. target=1"
    )
    p.add_argument(
        "--delimiter", type=_delimiter, default=",", help="delimiter of the CSV (default ',')"
    )
    p.set_defaults(handler=cmd_synth_sample)
    add_report_parser(actions)


def add_report_parser(actions) -> None:
    """`gankit synth report`: the quality report of a saved synthesizer (tabular/quality.py)."""
    p = actions.add_parser("report", help="quality report of a saved synthesizer against real rows")
    p.add_argument("model", help="model directory written by `gankit synth fit`")
    p.add_argument("--real", required=True, help="CSV of real rows (the training table)")
    p.add_argument("--out", required=True, help="HTML report to write (+ the same name .json)")
    p.add_argument("--holdout", help="CSV of real rows the model never saw (TSTR, attacks)")
    p.add_argument("--target", help="column to predict for train-synthetic-test-real utility")
    p.add_argument("--sensitive", type=_names, default=[], help="columns for attribute inference")
    p.add_argument("--n", type=int, help="synthetic rows (default: as many as --real)")
    p.add_argument(
        "--trees", type=int, default=100, help="trees of the detection and utility forests"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--delimiter", type=_delimiter, help=DELIMITER_HELP)
    p.set_defaults(handler=cmd_synth_report)


def cmd_synth_report(args: argparse.Namespace) -> int:
    from gankit.tabular.quality import write_report

    summary = write_report(
        args.model,
        args.real,
        args.out,
        args.holdout,
        args.delimiter,
        args.n,
        args.seed,
        target=args.target,
        sensitive=tuple(args.sensitive),
        trees=args.trees,
    )
    print(json.dumps(summary))
    return 0


def add_impute_parser(subparsers) -> argparse.ArgumentParser:
    """The `gankit impute` parser, returned so other modules can add options (e.g. --stream)."""
    p = subparsers.add_parser("impute", help="fill missing values of a CSV with a GANImputer")
    p.add_argument("--in", dest="inp", help="CSV whose empty cells are filled (unless --stream)")
    p.add_argument("--out", help="CSV to write (unless --stream)")
    p.add_argument(
        "--stream",
        action="store_true",
        help="with --model: read JSON lines on stdin, write each filled line on stdout at once",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--fit", help="CSV to fit the imputer on (default: the --in table)")
    src.add_argument("--model", help="saved imputer directory (no fitting)")
    p.add_argument("--save", help="write the fitted imputer to this directory")
    p.add_argument("--sample-posterior", action="store_true", help="one random completion")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1500, help="most generator steps (default 1500)")
    p.add_argument(
        "--id-columns", type=_names, default=[], help=ID_HELP + "; passed through untouched"
    )
    p.add_argument(
        "--delimiter", type=_delimiter, help=DELIMITER_HELP + "; the output uses the same"
    )
    p.set_defaults(handler=cmd_impute)
    return p


def cmd_impute(args: argparse.Namespace) -> int:
    if args.stream:
        from gankit.serve.stream import stream_command

        return stream_command(args.model)
    if not args.inp or not args.out:
        raise ConfigError("gankit impute needs --in and --out (or --model DIR --stream)")
    from gankit.tabular.files import impute_file

    report = impute_file(
        args.inp,
        args.out,
        fit=args.fit,
        model=args.model,
        save=args.save,
        sample_posterior=args.sample_posterior,
        seed=args.seed,
        id_columns=args.id_columns,
        delimiter=args.delimiter,
        n_steps=args.steps,
    )
    print(json.dumps(report))
    return 0


def cmd_synth_fit(args: argparse.Namespace) -> int:
    from gankit.tabular.files import synth_fit_file

    report = synth_fit_file(
        args.data,
        args.out,
        _names(args.discrete),
        args.steps,
        args.seed,
        id_columns=args.id_columns,
        delimiter=args.delimiter,
        model=args.model,
    )
    print(json.dumps(report))
    return 0


def cmd_synth_sample(args: argparse.Namespace) -> int:
    from gankit.tabular.files import synth_sample_file

    conditions = None
    if args.condition:
        if "=" not in args.condition:
            raise ConfigError(f"--condition expects COLUMN=VALUE, got {args.condition!r}")
        column, value = args.condition.split("=", 1)
        conditions = {column: value}
    report = synth_sample_file(
        args.model, args.out, args.n, args.seed, conditions, delimiter=args.delimiter
    )
    print(json.dumps(report))
    return 0
