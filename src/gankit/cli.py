"""The `gankit` command: subcommands parse arguments and call one library function each."""

from __future__ import annotations

import argparse
import importlib
import sys

from gankit.errors import GankitError

# Modules that add subcommands, each with `register(subparsers)`. Listed explicitly.
COMMAND_MODULES: tuple[str, ...] = (
    "gankit.commands",
    "gankit.serve.commands",
    "gankit.metrics.commands",
    "gankit.tabular.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand registered."""
    from gankit import __version__

    parser = argparse.ArgumentParser(
        prog="gankit", description="Train, evaluate and serve GANs for images and tables."
    )
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes print one line and exit with code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
    except GankitError as exc:
        print(f"gankit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
