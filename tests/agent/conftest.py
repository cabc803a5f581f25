"""Fixtures for the agent's tests: the agent package on the path, a fake portal, configurations."""
from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENT_SRC = ROOT / "agent"
if str(AGENT_SRC) not in sys.path:
    sys.path.insert(0, str(AGENT_SRC))

from tests.agent.fake_portal import FakePortal  # noqa: E402


def agent_env(**extra: str) -> dict[str, str]:
    """Environment for a ``python -m datas_agent`` child process run from the checkout."""
    env = dict(os.environ)
    paths = [str(AGENT_SRC), str(ROOT / "pipeline"), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(paths).rstrip(os.pathsep)
    env.pop("DATAS_AGENT_API_KEY", None)
    env.update(extra)
    return env


@pytest.fixture
def portal():
    with FakePortal() as server:
        yield server


def write_config(directory: Path, server_url: str, api_key: str = "dsk_test", site_id: str = "7",
                 backend: str = "simulator", extra: str = "", hardware_extra: str = "", devices: str = "",
                 filters: str = "[B, V, R]") -> Path:
    """A complete YAML configuration in ``directory``; ``extra`` appends top-level settings."""
    (directory / "site.key").write_text(api_key + "\n")
    devices = devices or "    mount: sim mount\n    camera: sim camera\n    filter_wheel: sim wheel\n"
    text = textwrap.dedent(f"""\
        server:
          url: {server_url}
          site_id: "{site_id}"
          api_key_file: site.key
          timeout_s: 5
        site:
          latitude_deg: -30.24
          longitude_deg: -70.74
          elevation_m: 2200
        hardware:
          backend: {backend}
          telescope_name: Test scope
          focal_length_mm: 400
          pixel_size_um: 5.0
          filters: {filters}
          devices:
        """) + devices + hardware_extra + textwrap.dedent("""\
        safety:
          min_altitude_deg: 15
          max_sun_altitude_deg: 90
        poll_interval_s: 0.2
        default_exposure_s: 1
        data_dir: data
        """) + extra
    path = directory / "agent.yaml"
    path.write_text(text)
    return path
