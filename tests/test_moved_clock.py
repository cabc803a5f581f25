"""scripts/moved_clock.sh, which `make test` uses to run the suite with the clock moved ahead."""
from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import datetime, subprocess, threading, time
start = time.monotonic()
time.sleep(0.2)                      # clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME): the shim's case
threading.Event().wait(0.2)          # sem_clockwait on the real monotonic clock
child = subprocess.run(["date", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
print(datetime.datetime.now(datetime.timezone.utc).date(), child, round(time.monotonic() - start, 1))
"""


@pytest.mark.skipif(not list(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1")) or not shutil.which("cc"),
                    reason="libfaketime or a C compiler is missing (scripts/services.sh installs them)")
def test_the_moved_clock_shifts_dates_for_children_and_keeps_sleeps_and_waits_real():
    done = subprocess.run(["bash", "scripts/moved_clock.sh", "400", sys.executable, "-c", PROBE], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ours, child, elapsed = done.stdout.split()
    # The real date, even when this test itself runs under the suite's moved clock.
    real = subprocess.run(["env", "-u", "LD_PRELOAD", "-u", "FAKETIME", "date", "-u", "+%Y-%m-%d"],
                          capture_output=True, text=True, check=True).stdout.strip()
    expected = (datetime.fromisoformat(real) + timedelta(days=400)).date().isoformat()
    assert ours == child == expected
    assert 0.3 <= float(elapsed) < 5.0
