"""The INDI backend against real indiserver + INDI simulators drawing real Tycho-2 stars."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime

import numpy as np
import pytest
from astropy.time import Time
from datas_agent.config import load_config
from datas_agent.drivers import open_rig
from datas_agent.drivers.base import ExposureRequest
from datas_agent.errors import DriverCrashedError, DriverError
from datas_agent.tycho import cone
from datas_pipeline.detection.extract import extract_sources

from tests.agent.conftest import agent_env, write_config
from tests.agent.fake_portal import FakePortal
from tests.agent.simulators import IndiServer, free_port, indi_available, tycho_catalogue

pytestmark = [pytest.mark.slow, pytest.mark.skipif(indi_available() is not None, reason=str(indi_available()))]
SITE_LAT, SITE_LON = 50.0, 8.0
INDI_DEVICES = "    mount: Telescope Simulator\n    camera: CCD Simulator\n    filter_wheel: Filter Simulator\n"


@pytest.fixture(scope="module")
def indiserver(tmp_path_factory):
    server = IndiServer(tmp_path_factory.mktemp("indi")).start()
    yield server
    server.stop()


def indi_config(tmp_path, port, server_url="http://127.0.0.1:9"):
    path = write_config(tmp_path, server_url, backend="indi", devices=INDI_DEVICES, filters="[Red, Green, Blue]",
                        hardware_extra=f"  indi: {{port: {port}, connect_timeout_s: 5}}\n")
    text = path.read_text().replace("latitude_deg: -30.24", f"latitude_deg: {SITE_LAT}").replace(
        "longitude_deg: -70.74", f"longitude_deg: {SITE_LON}").replace("focal_length_mm: 400", "focal_length_mm: 200")
    path.write_text(text.replace("pixel_size_um: 5.0", "pixel_size_um: 5.2"))
    return path


def real_star_near_zenith():
    """A Tycho-2 star of VT 8-9 transiting high at the test site now, and its neighbours."""
    lst = Time(datetime.now(UTC)).sidereal_time("mean", longitude=SITE_LON).deg
    stars = cone(tycho_catalogue(), lst, 68.0, 2.0, mag_limit=9.0)
    target = stars[stars.mag > 8.0][0]
    field = cone(tycho_catalogue(), target.ra, target.dec, 0.35, mag_limit=11.5)
    comps = [{"ra": float(s.ra), "dec": float(s.dec), "mag": float(s.mag)} for s in field if s.dist_deg > 0.01]
    return target, comps


def test_slew_filter_and_expose_real_stars(indiserver, tmp_path):
    target, _ = real_star_near_zenith()
    with open_rig(load_config(indi_config(tmp_path, indiserver.port))) as rig:
        assert rig.mount.equinox == "JNOW"
        assert rig.filter_wheel.names()[:3] == ["Red", "Green", "Blue"]
        from datas_agent.observability import to_mount_equinox
        now = datetime.now(UTC)
        rig.mount.slew_to(*to_mount_equinox(float(target.ra), float(target.dec), now, "JNOW"))
        rig.filter_wheel.select("Green")
        exposure = rig.camera.expose(ExposureRequest(exposure_s=2.0))
    assert exposure.data.shape == (512, 640) and exposure.header["INSTRUME"] == "CCD Simulator"
    sources = extract_sources(exposure.data.astype(np.float32))
    assert len(sources) >= 5
    # The target (a VT 8-9 star) sits near the centre, within the simulator's pointing error
    # (its slews end up to ~3' off, as the machine-stack notes found too).
    d = np.hypot(sources["x"] - 319.5, sources["y"] - 255.5)
    assert d.min() < 35.0, f"nothing near the centre; nearest source {d.min():.1f} px away"


def test_a_crash_of_the_indi_client_costs_one_command(indiserver, tmp_path):
    """A segfault in the native INDI library kills only the child process that hosts it."""
    with open_rig(load_config(indi_config(tmp_path, indiserver.port))) as rig:
        backend = rig.backends[0]
        # Dead between two commands: the next command starts a new client and succeeds.
        pid = backend.worker_pid
        os.kill(pid, signal.SIGKILL)
        backend._process.wait(timeout=10)
        assert rig.filter_wheel.names()[0] == "Red"
        assert backend.worker_pid != pid
        # Dead during a command: that command fails with the reason, and only that one.
        pid = backend.worker_pid
        killer = threading.Timer(0.5, os.kill, (pid, signal.SIGKILL))
        killer.start()
        try:
            with pytest.raises(DriverCrashedError, match="died during expose"):
                rig.camera.expose(ExposureRequest(exposure_s=3.0))
        finally:
            killer.join()
        assert rig.filter_wheel.names()[0] == "Red"   # restarted and reconnected
        assert backend.worker_pid != pid


def test_unknown_device_and_unreachable_server_are_named(indiserver, tmp_path):
    path = indi_config(tmp_path, indiserver.port)
    path.write_text(path.read_text().replace("camera: CCD Simulator", "camera: ZWO ASI294"))
    with pytest.raises(DriverError, match=r"INDI camera 'ZWO ASI294' not found on 127.0.0.1:\d+; devices there: "
                                          r"CCD Simulator, Filter Simulator, Telescope Simulator"):
        open_rig(load_config(path))
    dead = free_port()
    run = subprocess.run([sys.executable, "-m", "datas_agent", "run", "--cycles", "1",
                          str(indi_config(tmp_path, dead))], env=agent_env(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 3
    assert f"cannot connect to indiserver at 127.0.0.1:{dead}" in run.stderr
    assert "Traceback" not in run.stderr


def test_agent_night_with_indi(indiserver, tmp_path):
    target, comps = real_star_near_zenith()
    entry = {"id": 21, "name": "TYC field star", "ra_deg": float(target.ra), "dec_deg": float(target.dec),
             "observation_requirements": {"filters": ["Green"], "exposure_sec": 2}, "comparison_stars": comps}
    with FakePortal(filters=("Red", "Green", "Blue"), targets=[entry]) as portal:
        result = subprocess.run([sys.executable, "-m", "datas_agent", "run", "--cycles", "1",
                                 str(indi_config(tmp_path, indiserver.port, portal.url))],
                                env=agent_env(), capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-2000:]
        (record,) = portal.observations.values()
    assert record["filter"] == "Green" and record["target_id"] == 21
    assert record["fits_header"]["INSTRUME"] == "CCD Simulator"
    assert "position_assumed" in record["quality_flags"]   # INDI frames carry no WCS
    photometry = record["photometry"]
    # GAIN 90 is the simulator's gain *setting*, not e-/ADU: as on the server, the errors then
    # assume 1 e-/ADU (datas_pipeline.io.headers.electrons_per_adu). Taken as e-/ADU, 90 would
    # inflate the S/N about ninefold.
    assert record["fits_header"]["GAIN"] == 90.0 and record["fits_header"].get("EGAIN") is None
    # The simulator's noise is drawn anew each run: its star's S/N scatters about 10-15 (one CI run
    # measured 10.0). Ninefold inflated would be ~100, ninefold deflated ~1.
    assert 5 < photometry["snr"] < 40
    assert photometry["method"] == "instrumental"
