"""What every sub-command writes besides its products: JSON records, and checked output paths.

Writing fails as a :class:`~datas_pipeline.errors.PipelineError` naming the path (exit 2 with one
line), never a traceback; commands that run long check their outputs before they start.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from datas_pipeline.errors import PipelineError


def jsonable(value: Any) -> Any:
    """``json.dumps`` default: numpy scalars (non-finite floats as null) and paths."""
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _unwritable(target: str | Path, exc: Exception) -> PipelineError:
    return PipelineError(f"cannot write {target}: {getattr(exc, 'strerror', None) or exc}")


def write_json(target: str | None, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``target`` (``-`` is stdout; None writes nothing)."""
    if not target:
        return
    text = json.dumps(payload, indent=2, default=jsonable)
    if target == "-":
        print(text)
        return
    try:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    except (OSError, ValueError) as exc:
        raise _unwritable(target, exc) from None


def open_stream(target: str | None) -> IO[str] | None:
    """A text file for JSON lines at ``target`` (None for no file or ``-``, which is stdout)."""
    if not target or target == "-":
        return None
    try:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w")
    except (OSError, ValueError) as exc:
        raise _unwritable(target, exc) from None


def check_writable(*targets: str | Path | None) -> None:
    """Make sure a file can be created where each target goes, before hours of work.

    The folder is created if missing and probed with a temporary file (permissions alone do
    not tell: root may write anywhere but in /proc, a read-only mount refuses everyone).
    ``None`` and ``-`` (stdout) are skipped.
    """
    for target in targets:
        if not target or str(target) == "-":
            continue
        folder = Path(target).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".datas-probe-"):
                pass
        except (OSError, ValueError) as exc:
            raise _unwritable(target, exc) from None
