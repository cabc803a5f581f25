"""Sub-commands of ``python -m pipeline`` (see pipeline/__main__.py for the contract)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's sub-commands."""
