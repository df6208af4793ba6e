"""The `gankit` command: subcommands parse arguments and call one library function each.

The CLI starts at once: `gankit --help`, `gankit --version` and an unknown command import no
command module (so neither torch nor fastapi). `gankit COMMAND ...` imports only the module
that defines COMMAND, and that module's handlers import the heavy libraries they need.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gankit.errors import GankitError

# command -> (module with `register(subparsers)` that adds it, one-line help for `gankit --help`).
# Listed explicitly; tests/test_cli.py checks that each module registers exactly these commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("gankit.commands", "train a GAN from a YAML recipe, or resume a run"),
    "sample": ("gankit.commands", "write samples of a trained generator as a PNG grid"),
    "demo": ("gankit.commands", "train the digits DCGAN (~2 min) and write pictures"),
    "bench": ("gankit.commands", "run a benchmark protocol and write NAME.json"),
    "check": ("gankit.commands", "verify a model directory (hashes, spec against weights)"),
    "eval": ("gankit.commands", "compute metrics of a trained run, write eval.json"),
    "encode": (
        "gankit.commands",
        "encode images with a model's encoder (VAE, VAE-GAN, BiGAN), write .npy",
    ),
    "report": ("gankit.commands", "write a self-contained report.html for a run"),
    "translate": ("gankit.commands", "translate images with a trained CycleGAN (A <-> B)"),
    "serve": ("gankit.serve.commands", "serve models over HTTP (needs the serve extra)"),
    "apikey": ("gankit.serve.commands", "create an API key for `gankit serve`"),
    "export": ("gankit.serve.commands", "export a model to ONNX; quantize or prune it"),
    "impute": ("gankit.tabular.commands", "fill missing values of a CSV with a GANImputer"),
    "synth": ("gankit.tabular.commands", "fit a tabular GAN or sample a saved one"),
    "augment": (
        "gankit.augment.commands",
        "add generated rows of the rare classes to a CSV, or generated images per class folder",
    ),
    "tune": ("gankit.tune", "search hyper-parameters with Optuna, write the best recipe"),
    "keygen": ("gankit.crypto", "write a new random AES-256 key file (mode 0600)"),
    "encrypt": ("gankit.crypto", "encrypt a model directory or a generated file (AES-256-GCM)"),
    "decrypt": ("gankit.crypto", "decrypt a model directory or a generated file (AES-256-GCM)"),
}
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(m for m, _ in COMMANDS.values()))


def _top_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    from gankit import __version__

    parser = argparse.ArgumentParser(
        prog="gankit", description="Train, evaluate and serve GANs for images and tables."
    )
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    return parser, subparsers


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: with `command`, the full parsers of the module that defines it;
    without, every command as a one-line stub (enough for `--help` and for usage errors)."""
    parser, subparsers = _top_parser()
    if command in COMMANDS:
        importlib.import_module(COMMANDS[command][0]).register(subparsers)
    else:
        for name, (_, help_text) in COMMANDS.items():
            subparsers.add_parser(name, help=help_text)
    return parser


def build_full_parser() -> argparse.ArgumentParser:
    """Every command's full parser (imports every command module; for tests and docs)."""
    parser, subparsers = _top_parser()
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes print one line and exit with code 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
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
