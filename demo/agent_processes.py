"""Run ``datas-agent`` processes beside the portal and make sure none outlives it.

Each agent runs as ``python -m datas_agent run CONFIG`` from this checkout (``agent/`` and the
repository root on ``PYTHONPATH``, as the agent uses ``pipeline/``), in its own session so a
Ctrl-C in the terminal reaches only the portal, which then stops the agents in order: SIGTERM
(the agent finishes its current step), then SIGKILL after a grace period (safe: the agent's
outbox is durable). On Linux each agent also asks the kernel for SIGTERM when its parent
dies, so even a portal killed with SIGKILL leaves no agent behind.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
STOP_GRACE_S = 20.0


def agent_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for an agent run from this checkout: ``agent/`` and the root on ``PYTHONPATH``."""
    env = dict(os.environ if base is None else base)
    root = Path(settings.BASE_DIR)
    paths = [str(root / "agent"), str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    # The key comes from the configuration's key file, never from an inherited variable.
    env.pop("DATAS_AGENT_API_KEY", None)
    env.pop("DATAS_AGENT_CONFIG", None)
    return env


def _die_with_parent(parent_pid: int):
    """A ``preexec_fn``: SIGTERM this child when its parent dies (Linux), and not start if it already has."""
    def preexec() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent_pid:  # the parent died between fork and prctl
            os._exit(1)
    return preexec


@dataclass
class AgentProcess:
    name: str
    config_path: Path
    log_path: Path
    process: subprocess.Popen
    started_at: float = 0.0  # time.monotonic() at start
    restarts: int = 0  # restarts in a row without a long run between them

    @property
    def pid(self) -> int:
        return self.process.pid

    def last_words(self, limit: int = 4096) -> str:
        """The last line the agent wrote to its log: usually why it stopped."""
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(log_file.tell() - limit, 0))
                lines = [line.strip() for line in log_file.read().decode(errors="replace").splitlines()]
        except OSError as exc:
            return f"its log {self.log_path} cannot be read ({exc.strerror})"
        lines = [line for line in lines if line and not line.startswith("---")]
        return lines[-1][:300] if lines else "it wrote nothing to its log"


class AgentProcesses:
    """The agents started by this process; `stop` (or leaving the ``with`` block) ends every one."""

    def __init__(self, python: str = sys.executable, grace_s: float = STOP_GRACE_S) -> None:
        self.python = python
        self.grace_s = grace_s
        self.running: list[AgentProcess] = []

    def __enter__(self) -> AgentProcesses:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, name: str, config_path: Path, log_path: Path) -> AgentProcess:
        """Start ``datas-agent run config_path`` with its output appended to ``log_path``.

        Call from the main thread: the kernel's parent-death signal follows the thread that
        forked, not the process.
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log_file:
            log_file.write(f"--- {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC: starting the agent for {name}\n".encode())
            log_file.flush()
            preexec = _die_with_parent(os.getpid()) if sys.platform.startswith("linux") else None
            process = subprocess.Popen(
                [self.python, "-m", "datas_agent", "run", str(config_path)],
                cwd=config_path.parent, env=agent_environment(), stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec,
            )
        agent = AgentProcess(name=name, config_path=config_path, log_path=log_path, process=process,
                             started_at=time.monotonic())
        self.running.append(agent)
        return agent

    def restart(self, agent: AgentProcess) -> AgentProcess:
        """Start a stopped agent again in its place (same configuration, key and outbox).

        The kernel's parent-death signal follows the forking thread: restart from a thread that
        lives as long as the portal (``run_demo``'s watcher does).
        """
        if agent.process.poll() is None:
            raise RuntimeError(f"the agent for {agent.name} is still running")
        fresh = self.start(agent.name, agent.config_path, agent.log_path)
        self.running.remove(fresh)
        fresh.restarts = agent.restarts + 1
        self.running[self.running.index(agent)] = fresh
        return fresh

    def exited(self) -> list[AgentProcess]:
        """Agents that have stopped on their own (their log says why)."""
        return [agent for agent in self.running if agent.process.poll() is not None]

    def stop(self) -> None:
        """SIGTERM every agent, wait up to the grace period, then SIGKILL what is left; reap them all.

        A second Ctrl-C while waiting kills the rest at once (their outboxes are durable).
        """
        for agent in self.running:
            if agent.process.poll() is None:
                agent.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        try:
            for agent in self.running:
                try:
                    agent.process.wait(timeout=max(deadline - time.monotonic(), 0.0))
                except subprocess.TimeoutExpired:
                    log.warning("agent for %s did not stop within %.0f s; killing it", agent.name, self.grace_s)
        finally:
            for agent in self.running:
                if agent.process.poll() is None:
                    agent.process.kill()
                    agent.process.wait()
            self.running.clear()
