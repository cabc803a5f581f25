"""``manage.py run_demo`` as ``make run`` runs it: SQLite under a fresh var dir, a real simulated agent, no orphans.

Each test starts the real command (one agent, an ephemeral port), waits for what the agent
does through the portal's API, then stops the portal as a person would (Ctrl-C) or as a crash
would (SIGKILL), and checks that the agent process is gone.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0


def embedded_env(var: Path) -> dict[str, str]:
    """The environment of ``make run``: no DATABASE_URL, no REDIS_URL; here a private var dir."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DATAS_AGENT_API_KEY")}
    env["DATAS_VAR_DIR"] = str(var)
    return env


def manage(var: Path, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=embedded_env(var), check=True,
                   capture_output=True, timeout=180)


@pytest.fixture(scope="module")
def demo_var(tmp_path_factory) -> Path:
    var = tmp_path_factory.mktemp("var")
    manage(var, "migrate", "--noinput")
    manage(var, "load_demo")
    return var


def is_gone(pid: int) -> bool:
    """True when ``pid`` has exited (reaped, or a zombie awaiting its new parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_until(condition, timeout_s: float, what: str, interval_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


class DemoRun:
    """``manage.py run_demo 127.0.0.1:0 --agents 1``, with Ctrl-C delivered as in a terminal."""

    def __init__(self, var: Path) -> None:
        self.var = var
        self.output_path = var / "run_demo.out"
        self.agent_pids: list[int] = []

    def __enter__(self) -> DemoRun:
        output = open(self.output_path, "wb")
        # A shell's background jobs start with SIGINT ignored, which Python would keep.
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_demo", "127.0.0.1:0", "--agents", "1"], cwd=ROOT,
            env=embedded_env(self.var), stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        output.close()
        banner = wait_until(self._banner, START_TIMEOUT_S, "the demo to start")
        self.port = int(re.search(r"Demo login: http://127\.0\.0\.1:(\d+)/", banner).group(1))
        self.agent_pids = [int(pid) for pid in re.findall(r"pid (\d+), log ", banner)]
        self.log_path = Path(re.search(r"pid \d+, log (\S+)", banner).group(1))
        self.key = self.log_path.with_suffix(".key").read_text().strip()
        return self

    def _banner(self) -> str | None:
        text = self.output_path.read_text(errors="replace")
        if self.process.poll() is not None:
            pytest.fail(f"run_demo exited with {self.process.returncode}:\n{text[-3000:]}")
        return text if "Demo login:" in text else None

    @property
    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def api(self, path: str) -> dict:
        response = requests.get(f"http://127.0.0.1:{self.port}/api/v1/{path}",
                                headers={"Authorization": f"Bearer {self.key}"}, timeout=10)
        response.raise_for_status()
        return response.json()

    def __exit__(self, *exc_info: object) -> None:
        # Only if a test failed midway: never leave a server or an agent behind.
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in self.agent_pids:
            if not is_gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_agent_feeds_the_portal_and_ctrl_c_stops_it(demo_var):
    with DemoRun(demo_var) as demo:
        assert len(demo.agent_pids) == 1
        assert "dark now" in demo.output, demo.output[-2000:]
        assert "as 'demo', password 'demo-datas'" in demo.output
        # The site already holds load_demo's synthetic observations; the agent's name their frame.
        stored = wait_until(lambda: [o for o in demo.api("observations?limit=1000")["results"] if o["image_ref"]],
                            START_TIMEOUT_S, "an observation from the simulated agent")
        observation = stored[0]
        assert observation["fits_header"]["FILTER"] == observation["filter"]
        assert observation["fits_header"]["OBSID"] == observation["observation_id"]
        assert observation["photometry"]["magnitude"] is not None
        (site,) = demo.api("sites")["results"]
        assert site["is_online"] and site["status"] == "observing"
        assert observation["site_id"] == site["id"]

        demo.process.send_signal(signal.SIGINT)
        assert demo.process.wait(timeout=60) == 0, demo.output[-2000:]
        assert "Every agent stopped." in demo.output
        assert all(is_gone(pid) for pid in demo.agent_pids)
        assert "stopping after the current step" in demo.log_path.read_text()


def test_an_agent_dies_with_a_killed_portal(demo_var):
    with DemoRun(demo_var) as demo:
        wait_until(lambda: "hardware connected" in demo.log_path.read_text(), START_TIMEOUT_S,
                   "the agent to connect its simulated rig")
        demo.process.kill()  # no chance to clean up: the kernel's parent-death signal must do it
        demo.process.wait()
        wait_until(lambda: all(is_gone(pid) for pid in demo.agent_pids), 60, "the orphaned agent to stop")
        assert "signal 15: stopping after the current step" in demo.log_path.read_text()


def test_a_stopped_agent_is_explained_and_restarted(demo_var):
    with DemoRun(demo_var) as demo:
        wait_until(lambda: "hardware connected" in demo.log_path.read_text(), START_TIMEOUT_S,
                   "the agent to connect its simulated rig")
        (first,) = demo.agent_pids
        os.kill(first, signal.SIGKILL)  # as a crash would
        line = wait_until(lambda: re.search(r"The simulated agent for .+ stopped \(exit status -9: .+\); "
                                            r"restarting it in 5 s", demo.output),
                          30, "run_demo to say the agent stopped")
        assert str(demo.log_path) in demo.output[line.start():]
        restarted = wait_until(lambda: re.search(r"Restarted the simulated agent for .+ \(pid (\d+), restart 1\)",
                                                 demo.output), 30, "the agent to be restarted")
        second = int(restarted.group(1))
        demo.agent_pids.append(second)
        assert second != first and not is_gone(second)
        # The restarted agent carries on observing through the portal, with the same key.
        wait_until(lambda: demo.log_path.read_text().count("hardware connected") >= 2, START_TIMEOUT_S,
                   "the restarted agent to connect its rig")
        demo.process.send_signal(signal.SIGINT)
        try:
            assert demo.process.wait(timeout=90) == 0, demo.output[-2000:]
        except subprocess.TimeoutExpired:
            pytest.fail(f"run_demo did not stop on Ctrl-C:\n{demo.output[-3000:]}\nagent log:\n"
                        f"{demo.log_path.read_text()[-3000:]}")
        assert is_gone(second)
