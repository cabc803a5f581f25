"""Astropy's time data: offline, on any date, refreshed only on demand (datas_pipeline.sky.timedata).

The refresh tests serve IERS-A files from a local HTTP server (the internet is the one thing
mocked) into a private astropy cache.
"""
from __future__ import annotations

import http.server
import logging
import subprocess
import sys
import threading
import warnings
from datetime import UTC, datetime
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.config.paths import set_temp_cache
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.time import Time
from astropy.utils import iers
from datas_pipeline.sky import timedata
from datas_pipeline.sky.visibility import altaz

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore():
    yield
    timedata.configure_time_data(download=False, force=True)


def shifted_table(days: float, drop_last: int = 0) -> bytes:
    """The bundled finals2000A file with every MJD moved by ``days`` (a 'newer' or 'older' table)."""
    lines = Path(iers.IERS_A_FILE).read_text().splitlines()
    if drop_last:
        lines = lines[:-drop_last]
    out = [line[:7] + f"{float(line[7:15]) + days:8.2f}" + line[15:] for line in lines]
    return ("\n".join(out) + "\n").encode()


@pytest.fixture
def table_server(monkeypatch, tmp_path):
    """A local HTTP server; set ``.body`` to what it serves at /finals2000A.all."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = server.body
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.body = b""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/finals2000A.all"
    monkeypatch.setenv(timedata.URL_SETTING, url)
    cache = tmp_path / "astropy-cache"
    cache.mkdir()
    with set_temp_cache(cache):
        yield server
    server.shutdown()


def test_offline_by_default_and_no_thirty_day_limit():
    status = timedata.configure_time_data(force=True)
    assert iers.conf.auto_download is False and iers.conf.auto_max_age is None
    assert status.source == "bundled" and not status.download
    assert status.predictions_end > datetime(2026, 1, 1, tzinfo=UTC)


def test_a_transform_years_past_the_table_works_and_stays_within_the_schedulers_budget():
    timedata.configure_time_data(force=True)
    when = Time("2031-06-21T23:00:00", scale="utc")
    site = EarthLocation(lat=28.76 * u.deg, lon=-17.88 * u.deg, height=2396 * u.m)
    ra, dec = np.array([83.63, 279.23, 10.68]), np.array([22.01, 38.78, 41.27])
    with warnings.catch_warnings(record=True) as seen:
        warnings.resetwarnings()  # not even pytest's settings: only what configure installs
        warnings.simplefilter("always")
        timedata.configure_time_data()
        frame = AltAz(obstime=when, location=site)
        theirs = SkyCoord(ra * u.deg, dec * u.deg).transform_to(frame).alt.deg
    assert not seen, "no warning per call: configure logs the one that matters"
    ours = altaz(ra, dec, np.array([28.76]), np.array([-17.88]), np.array([when.unix])).altitude_deg
    # UT1-UTC held at its last value errs by < 1 s of rotation; the scheduler's budget is 1'.
    assert np.abs(np.ravel(ours) - theirs).max() * 60 < 1.0


def test_past_the_table_one_warning_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="datas_pipeline.sky.timedata"):
        status = timedata.configure_time_data(force=True)
        timedata.configure_time_data()
        timedata.configure_time_data()
    said = [r for r in caplog.records if "Earth-orientation table" in r.getMessage()]
    # Today's clock is inside the bundled table; CI's second pass runs 400 days ahead, past it.
    assert len(said) == (1 if status.degraded else 0)
    if said:
        assert "refresh_time_data" in said[0].getMessage()


def test_refresh_takes_a_newer_table_and_keeps_the_bundled_one_over_an_older(table_server):
    table_server.body = shifted_table(-400.0)
    status = timedata.refresh_time_data()
    assert status.source == "bundled", "an older download must not replace the bundled table"
    table_server.body = shifted_table(+730.0)
    status = timedata.refresh_time_data()
    assert status.source.startswith("http://127.0.0.1") and status.path
    bundled_end = Time(float(iers.IERS_A.open(iers.IERS_A_FILE)["MJD"][-1].value), format="mjd")
    assert abs((status.predictions_end - bundled_end.to_datetime(timezone=UTC)).days - 730) <= 1
    assert iers.earth_orientation_table.get() is not None
    # Offline again: the cached table is still the one used, with no network involved.
    table_server.shutdown()
    assert timedata.configure_time_data(force=True).source == status.source


def test_a_broken_download_changes_nothing(table_server):
    table_server.body = b"<html>captive portal</html>"
    with pytest.raises(timedata.TimeDataError, match="127.0.0.1"):
        timedata.refresh_time_data()
    assert timedata.configure_time_data(force=True).source == "bundled"


def test_downloads_allowed_but_unreachable_is_a_warning_not_an_error(monkeypatch, caplog, tmp_path):
    monkeypatch.setenv(timedata.URL_SETTING, "http://127.0.0.1:9/finals2000A.all")  # discard port: refused
    with set_temp_cache(tmp_path), caplog.at_level(logging.WARNING, logger="datas_pipeline.sky.timedata"):
        status = timedata.configure_time_data(download=True, force=True)
    assert status.download and status.source == "bundled"
    assert any("could not refresh" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("command", [
    [sys.executable, "manage.py", "refresh_time_data"],
    [sys.executable, "-m", "datas_agent", "refresh-time-data"],
])
def test_the_refresh_commands_fail_with_a_message_when_offline(command, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path),
           "PYTHONPATH": f"{ROOT / 'agent'}:{ROOT}", timedata.URL_SETTING: "http://127.0.0.1:9/finals2000A.all",
           "DATABASE_URL": "sqlite:///:memory:"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "could not download the Earth-orientation table" in done.stderr
    assert "Traceback" not in done.stderr
