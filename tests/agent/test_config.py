"""Configuration: YAML and INI, every problem reported at once, and the example from `init`."""
from __future__ import annotations

import subprocess
import sys

import pytest
from datas_agent.config import load_config
from datas_agent.errors import ConfigError

from tests.agent.conftest import agent_env, write_config


def test_valid_yaml_config(tmp_path):
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9"))
    assert config.server.api_key == "dsk_test"
    assert config.server.site_id == "7"
    assert config.hardware.devices["camera"].backend == "simulator"
    assert config.hardware.filters == ("B", "V", "R")
    assert config.hardware.pixel_scale_arcsec == pytest.approx(206.265 * 5.0 / 400, rel=1e-4)
    assert config.data_dir == (tmp_path / "data").resolve()
    assert "dsk_test" not in repr(config.server)


def test_every_problem_is_listed_with_its_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "server: {url: ftp://x, site_id: 3}\n"
        "site: {latitude_deg: 95, longitude_deg: east}\n"
        "hardware: {backend: ascom, devices: {}}\n"
        "safety: {min_altitude_deg: -5}\n"
        "pole_interval_s: 3\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    for expected in ("server.url: 'ftp://x' is not an http(s) URL", "server.api_key: required",
                     "site.latitude_deg: 95.0 is above the maximum 90",
                     "site.longitude_deg: expected float, got 'east'",
                     "hardware.backend: 'ascom' is not one of simulator, indi, alpaca, picamera",
                     "safety.min_altitude_deg: -5.0 is below the minimum 0",
                     "pole_interval_s: unknown setting"):
        assert expected in message, message


def test_ini_is_accepted(tmp_path):
    (tmp_path / "agent.ini").write_text(
        "[server]\nurl = https://datas.example.org\nsite_id = 12\napi_key = dsk_abc\n"
        "[site]\nlatitude_deg = 48.5\nlongitude_deg = 9.05\n"
        "[hardware]\nbackend = indi\nfilters = B, V\n"
        "[hardware.devices]\ncamera = CCD Simulator\nmount = Telescope Simulator\n"
        "[hardware.indi]\nhost = 127.0.0.1\nport = 7625\n"
        "[agent]\npoll_interval_s = 30\n"
    )
    config = load_config(tmp_path / "agent.ini")
    assert config.hardware.backend == "indi"
    assert config.hardware.filters == ("B", "V")
    assert config.hardware.options["indi"]["port"] == 7625
    assert config.hardware.devices["camera"].name == "CCD Simulator"
    assert config.poll_interval_s == 30.0


def test_key_from_environment_wins_and_missing_key_file_is_named(tmp_path, monkeypatch):
    path = write_config(tmp_path, "http://127.0.0.1:9")
    (tmp_path / "site.key").unlink()
    with pytest.raises(ConfigError, match=r"server.api_key_file: cannot read .*site.key"):
        load_config(path)
    monkeypatch.setenv("DATAS_AGENT_API_KEY", "dsk_env")
    assert load_config(path).server.api_key == "dsk_env"


def test_broken_yaml_names_the_line(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("server:\n  url: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(path)


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "datas_agent", *args], cwd=cwd, env=agent_env(),
                          capture_output=True, text=True, timeout=60)


def test_init_writes_an_example_that_validates(tmp_path):
    result = run_cli("init", "site.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "site.yaml").read_text()
    assert "# DATAS site agent configuration" in text
    assert run_cli("init", "site.yaml", cwd=tmp_path).returncode == 2  # no silent overwrite
    (tmp_path / "site.key").write_text("dsk_example\n")
    result = run_cli("check-config", "site.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "site.yaml: OK" in result.stdout


def test_bad_config_ends_in_a_message_not_a_traceback(tmp_path):
    (tmp_path / "agent.yaml").write_text("server: {url: https://x.org}\n")
    for command in ("check-config", "status", "run", "upload"):
        result = run_cli(command, "agent.yaml", cwd=tmp_path)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert "problem(s) in the configuration" in result.stderr
        assert "site: missing section" in result.stderr
    result = run_cli("status", "missing.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "no such file" in result.stderr
