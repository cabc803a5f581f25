"""Argument types shared by the sub-commands: a bad value is refused by argparse (exit 2).

NaN and infinity are refused everywhere: a NaN limit would run hours of work and then fail
(a FITS header card cannot hold it), a negative count would silently slice a table.
"""
from __future__ import annotations

import argparse
import math


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    """A finite number above zero."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def non_negative_float(text: str) -> float:
    """A finite number, zero or above."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def positive_int(text: str) -> int:
    """A whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive whole number")
    return value


def add_jobs_argument(parser: argparse.ArgumentParser) -> None:
    """``--jobs N``: workers (processes, or threads where the work releases the GIL) for a
    batch command (default: DATAS_WORKERS, else the cores for batches large enough to repay them)."""
    parser.add_argument("--jobs", "-j", type=positive_int, default=None,
                        help="workers (default: the DATAS_WORKERS setting, else the number of cores; "
                             "commands that start processes use them for batches of 256 MB and more "
                             "only); the results do not depend on it")
