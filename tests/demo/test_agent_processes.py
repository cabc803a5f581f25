"""The demo's agent supervisor: a stopped agent says why, and restarts back off."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from demo.agent_processes import AgentProcess, AgentProcesses
from demo.management.commands.run_demo import HEALTHY_RUN_S, restart_delay


def test_a_bad_configuration_is_the_last_word_and_a_restart_replaces_the_process(tmp_path: Path):
    config = tmp_path / "agent.yaml"
    config.write_text("server: [this is not a mapping\n")
    log = tmp_path / "agent.log"
    with AgentProcesses(python=sys.executable, grace_s=5) as processes:
        agent = processes.start("Site A", config, log)
        agent.process.wait(timeout=60)
        assert processes.exited() == [agent]
        assert agent.process.returncode == 2
        assert "datas-agent:" in agent.last_words() and str(config.name) in agent.last_words()
        fresh = processes.restart(agent)
        assert processes.running == [fresh] and fresh.pid != agent.pid and fresh.restarts == 1
        fresh.process.wait(timeout=60)


def test_a_running_agent_is_not_restarted(tmp_path: Path):
    with AgentProcesses(grace_s=5) as processes:
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        agent = AgentProcess("Site A", tmp_path / "a.yaml", tmp_path / "a.log", sleeper, time.monotonic())
        processes.running.append(agent)
        with pytest.raises(RuntimeError, match="still running"):
            processes.restart(agent)


class _Stopped:
    def __init__(self, ran_s: float, restarts: int) -> None:
        self.started_at = time.monotonic() - ran_s
        self.restarts = restarts


def test_restart_delay_doubles_up_to_five_minutes_and_resets_after_a_healthy_run():
    assert [restart_delay(_Stopped(1.0, n)) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    healthy = _Stopped(HEALTHY_RUN_S + 1, 6)
    assert restart_delay(healthy) == 5 and healthy.restarts == 0
