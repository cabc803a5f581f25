"""The PyInstaller executable against the real portal: set DATAS_AGENT_EXE to a built `datas-agent`.

Build it first (about 2-4 minutes, outside the checkout):
``pyinstaller agent/datas-agent.spec --distpath /tmp/agent-dist --workpath /tmp/agent-build``
then ``DATAS_AGENT_EXE=/tmp/agent-dist/datas-agent pytest tests/agent/test_executable.py``.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.agent.conftest import agent_env
from tests.agent.test_end_to_end import night, stored  # noqa: F401 - the night fixture, reused

EXE = os.environ.get("DATAS_AGENT_EXE", "")
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not (EXE and Path(EXE).is_file()),
                                 reason="set DATAS_AGENT_EXE to a built datas-agent executable")]


def run_exe(*args):
    env = agent_env()
    env.pop("PYTHONPATH")  # the executable must carry everything itself
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=300)


def test_the_executable_observes_a_night(night, tmp_path):  # noqa: F811 - pytest fixture
    version = run_exe("--version")
    assert version.returncode == 0 and version.stdout.startswith("datas-agent ")
    assert run_exe("check-config", str(night["config"])).returncode == 0
    result = run_exe("run", "--cycles", "1", str(night["config"]))
    assert result.returncode == 0, result.stderr[-3000:]
    observations = stored(night["site"])
    assert sorted(o.filter for o in observations) == ["R", "V"]
    assert all(o.magnitude is not None and o.photometry_method == "instrumental" for o in observations)
    status = run_exe("status", str(night["config"]))
    assert status.returncode == 0 and "sent 2" in status.stdout
    # The live view ships too: one stack per filter, each previewed when the run ends.
    frames = tmp_path / "data" / "frames"
    live = run_exe("livestack", str(frames), "--recursive", "--once")
    assert live.returncode == 0, live.stderr[-2000:]
    assert sorted(p.name for p in (frames / "livestack").iterdir()) == ["Zenith_var_R.png", "Zenith_var_V.png"]
