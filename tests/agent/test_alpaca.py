"""The Alpaca backend against alpaca-simulators over real HTTP on 127.0.0.1 (light frames from Tycho-2)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from datas_agent.config import load_config
from datas_agent.drivers import open_rig
from datas_agent.drivers.base import ExposureRequest
from datas_agent.errors import DriverError
from datas_pipeline.detection.extract import extract_sources

from tests.agent.conftest import agent_env, write_config
from tests.agent.fake_portal import FakePortal
from tests.agent.simulators import AlpacaSimulators, alpaca_available, free_port
from tests.agent.test_indi import SITE_LAT, SITE_LON, real_star_near_zenith

pytestmark = [pytest.mark.slow, pytest.mark.skipif(alpaca_available() is not None, reason=str(alpaca_available()))]
DEVICES = "    mount: Simulator Telescope\n    camera: Simulator Camera\n    filter_wheel: Simulator Filter Wheel\n"


@pytest.fixture(scope="module")
def alpaca(tmp_path_factory):
    server = AlpacaSimulators(tmp_path_factory.mktemp("alpaca"), SITE_LAT, SITE_LON).start()
    yield server
    server.stop()


def alpaca_config(tmp_path, address, server_url="http://127.0.0.1:9"):
    path = write_config(tmp_path, server_url, backend="alpaca", devices=DEVICES, filters="[Red, Green, Blue]",
                        hardware_extra=f"  alpaca: {{address: '{address}', slew_timeout_s: 60}}\n")
    text = path.read_text().replace("latitude_deg: -30.24", f"latitude_deg: {SITE_LAT}").replace(
        "longitude_deg: -70.74", f"longitude_deg: {SITE_LON}")
    path.write_text(text.replace("focal_length_mm: 400", "focal_length_mm: 500").replace(
        "pixel_size_um: 5.0", "pixel_size_um: 10.0"))
    return path


def test_slew_filter_and_a_light_frame_with_real_stars(alpaca, tmp_path):
    target, _ = real_star_near_zenith()
    with open_rig(load_config(alpaca_config(tmp_path, alpaca.address))) as rig:
        assert rig.mount.name == "Simulator Telescope" and rig.mount.equinox == "J2000"
        rig.mount.slew_to(float(target.ra), float(target.dec))
        ra, dec = rig.mount.position()
        assert ra == pytest.approx(float(target.ra), abs=0.01) and dec == pytest.approx(float(target.dec), abs=0.01)
        rig.filter_wheel.select("Blue")
        exposure = rig.camera.expose(ExposureRequest(exposure_s=2.0))
    assert exposure.data.shape == (512, 512) and exposure.data.dtype == np.uint16
    assert exposure.header["INSTRUME"] == "Simulator Camera"
    sources = extract_sources(exposure.data.astype(np.float32))
    assert len(sources) >= 3
    d = np.hypot(sources["x"] - 255.5, sources["y"] - 255.5)
    assert d.min() < 10.0   # the VT 8-9 target at the centre


def test_unreachable_alpaca_server_is_a_clear_message(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(DriverError, match=f"Alpaca server at {address} unreachable"):
        open_rig(load_config(alpaca_config(tmp_path, address)))


def test_agent_night_with_alpaca(alpaca, tmp_path):
    target, comps = real_star_near_zenith()
    entry = {"id": 31, "name": "TYC star", "ra_deg": float(target.ra), "dec_deg": float(target.dec),
             "requirements": {"filters": ["Green"], "exposure_sec": 2}}
    with FakePortal(filters=("Red", "Green", "Blue"), targets=[entry]) as portal:
        result = subprocess.run([sys.executable, "-m", "datas_agent", "run", "--cycles", "1",
                                 str(alpaca_config(tmp_path, alpaca.address, portal.url))],
                                env=agent_env(), capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-2000:]
        (record,) = portal.observations.values()
    assert record["filter"] == "Green" and record["target_id"] == 31
    assert record["photometry"]["snr"] > 20
    assert record["fits_header"]["INSTRUME"] == "Simulator Camera"
