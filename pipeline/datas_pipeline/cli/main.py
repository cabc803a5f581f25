"""``datas-pipeline COMMAND ...`` (or ``python -m datas_pipeline``): the image science for people with a folder of frames.

Each module in ``COMMAND_MODULES`` defines ``register(subparsers)``, which adds its
sub-commands with ``set_defaults(func=handler)``; a handler takes the parsed arguments and
returns an exit code. Errors derived from :class:`PipelineError` end with the message and
exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from datas_pipeline.errors import PipelineError

COMMAND_MODULES = (
    "datas_pipeline.cli.frames",    # grade, calibrate, extract, photometry, solve
    "datas_pipeline.cli.stacking",  # register, stack, color, stretch, livestack
    "datas_pipeline.cli.movers",    # movers
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datas-pipeline", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
