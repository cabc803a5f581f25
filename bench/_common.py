"""Shared bits for the benchmarks: timing, versions, printing one comparison line."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def timed(function: Callable[[], object], repeats: int = 3) -> tuple[float, float, object]:
    """(median seconds, first-run seconds, last result) over ``repeats`` runs."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times[0], result


def tool_version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def header(title: str) -> None:
    print(f"== {title}")
    print(f"   python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}")


def compare(label: str, ours: float, peer: float, peer_name: str, unit: str = "s") -> None:
    ratio = peer / ours if ours > 0 else float("inf")
    print(f"{label:<42} ours {ours:8.3f} {unit}   {peer_name} {peer:8.3f} {unit}   ratio {ratio:6.2f}x")
