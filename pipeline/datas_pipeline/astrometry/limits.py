"""Running an external solver within a CPU budget and a wall-clock budget, and saying which stopped it.

Measured with solve-field 0.93 and the Debian Tycho-2 indexes on this kind of machine (2
cores shared, load 10-30), on a field with no solution: its ``--cpulimit`` is checked by the
engine between index files, so the process tree overshoots it, more for longer limits
(blind: 6.5 s of CPU for a 5 s limit, 24 s for 15 s, 64 s for 30 s, as on the real night of
issue 17); under load the wall time was 3-4 times the CPU time (272 s of wall for those
64 s). A wall limit of twice the CPU limit plus 10 s therefore killed solves still within
their CPU budget, and said nothing of why. So:

- the CPU used by the solver's whole process group is watched (``/proc``), and the group
  is stopped at ``cpu_budget(cpu_limit)`` (the solver's own limit plus its measured
  overshoot);
- the wall-clock limit is only a backstop against a hung solver
  (:func:`wall_budget`: generous, as load stretches wall time, not CPU time);
- the outcome says which limit ended the run: the solver's own, the CPU budget or the wall clock.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.25
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_budget(cpu_limit_s: float) -> float:
    """CPU seconds the solver's process group may use: its own limit, plus the measured overshoot."""
    return 2.5 * cpu_limit_s + 5.0


def wall_budget(cpu_limit_s: float) -> float:
    """Default wall-clock backstop (s): the CPU budget stretched by a loaded, shared machine."""
    return 4.0 * cpu_budget(cpu_limit_s) + 30.0


@dataclass(frozen=True)
class RunOutcome:
    """How a solver run ended: exit ``code`` (None when killed), its output, and what stopped it.

    ``stopped_by`` is None when the solver ended by itself, ``"cpu budget"`` or
    ``"wall-clock limit"`` when this module killed it. ``cpu_s`` is the CPU time of the
    whole process group (s), ``wall_s`` the elapsed time (s).
    """

    code: int | None
    output: str
    stopped_by: str | None
    cpu_s: float
    wall_s: float


def group_cpu_seconds(session_id: int) -> float:
    """CPU time (user + system, s) of the live processes of a session and their reaped children."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # Fields after the command: state(0) ppid(1) pgrp(2) session(3) ... utime(11) stime(12)
        # cutime(13) cstime(14).
        if int(fields[3]) == session_id:
            total += sum(int(v) for v in fields[11:15])
    return total / _TICKS


def run_limited(command: list[str], cpu_limit_s: float, wall_limit_s: float | None = None,
                cpu_budget_s: float | None = None) -> RunOutcome:
    """Run ``command`` in its own session; kill the session at the CPU budget or the wall limit.

    ``cpu_limit_s`` is the solver's own limit; the budgets default to :func:`cpu_budget` and
    :func:`wall_budget` of it (seconds).
    """
    wall_limit_s = wall_budget(cpu_limit_s) if wall_limit_s is None else wall_limit_s
    budget = cpu_budget(cpu_limit_s) if cpu_budget_s is None else cpu_budget_s
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    cpu = 0.0
    stopped_by = None
    while True:
        try:
            output, _ = process.communicate(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            pass
        cpu = max(cpu, group_cpu_seconds(process.pid))
        elapsed = time.monotonic() - started
        if cpu > budget:
            stopped_by = "cpu budget"
        elif elapsed > wall_limit_s:
            stopped_by = "wall-clock limit"
        if stopped_by:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            break
    code = None if stopped_by else process.returncode
    return RunOutcome(code, output or "", stopped_by, cpu, time.monotonic() - started)


def stop_reason(outcome: RunOutcome, cpu_limit_s: float, wall_limit_s: float | None) -> str:
    """A sentence naming the limit that ended an unsolved run."""
    if outcome.stopped_by == "cpu budget":
        return (f"stopped at the CPU budget: {outcome.cpu_s:.0f} s of CPU used "
                f"(solver limit {cpu_limit_s:g} s, budget {cpu_budget(cpu_limit_s):g} s)")
    if outcome.stopped_by == "wall-clock limit":
        limit = wall_budget(cpu_limit_s) if wall_limit_s is None else wall_limit_s
        return f"stopped at the {limit:g} s wall-clock limit after {outcome.cpu_s:.0f} s of CPU (machine busy?)"
    if "cpu time limit reached" in outcome.output.lower():
        return f"no solution within the solver's CPU limit ({cpu_limit_s:g} s)"
    if "wall-clock time limit reached" in outcome.output.lower():
        return "no solution within the solver's own wall-clock limit"
    return "no solution: every index within the hints was searched"
