"""Bad configuration found in review ends in one clear line and exit 2, never a traceback."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.agent.conftest import agent_env, write_config


def run(*args):
    return subprocess.run([sys.executable, "-m", "datas_agent", *map(str, args)], env=agent_env(),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda text: text.encode("utf-8") + b"\n# caf\xe9\n", "not UTF-8"),
    (lambda text: text.replace("url: http://127.0.0.1:9", "url: http://[::1").encode(), "is not an http(s) URL"),
])
def test_config_problems_are_messages(tmp_path, mangle, message):
    path = write_config(tmp_path, "http://127.0.0.1:9")
    path.write_bytes(mangle(path.read_text()))
    result = run("check-config", path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_driver_option_of_the_wrong_type_is_named(tmp_path):
    path = write_config(tmp_path, "http://127.0.0.1:9", hardware_extra="  simulator: {width: abc}\n")
    result = run("run", "--cycles", "1", path)
    assert "Traceback" not in result.stderr
    assert "hardware.simulator: an option has the wrong type" in result.stderr


def test_a_data_folder_that_cannot_be_made_is_a_message(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should go")
    path = write_config(tmp_path, "http://127.0.0.1:9", extra=f"data_dir: {blocker / 'data'}\n")
    path.write_text(path.read_text().replace("data_dir: data\n", "", 1))
    result = run("upload", path)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "not-a-folder" in result.stderr
