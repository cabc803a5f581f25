"""End to end with real device servers: the portal (live server on PostgreSQL) tasks a site whose
agent drives the INDI simulators, the Alpaca simulators or the ZeroMQ Pi camera server.

Each test is one short night of `datas-agent run --cycles 1` as its own process: heartbeat,
the scheduler's ranked list, slew, expose, measure, upload; then the observations are read
back from the portal's database with their photometry. Every server started is stopped.
"""
from __future__ import annotations

import pytest

from tests.agent.conftest import write_config
from tests.agent.simulators import AlpacaSimulators, IndiServer, alpaca_available, indi_available, stop_group
from tests.agent.test_alpaca import alpaca_config
from tests.agent.test_end_to_end import run_agent, stored
from tests.agent.test_indi import SITE_LAT, SITE_LON, indi_config, real_star_near_zenith
from tests.agent.test_loop import overhead
from tests.agent.test_picamera import start_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
WHEEL = ["Red", "Green", "Blue"]


@pytest.fixture
def tasking(live_server, monkeypatch, settings):
    """``tasking(lat, lon, filters, **target)``: a network, a site with a key, one target for tonight.

    As in test_end_to_end's ``night``: the scheduler's clock is frozen at a dark night with the
    sidereal time of now (the agent checks the sky on the real clock), the site reports clear
    skies, and the target wants many points so one observation does not end its tasking.
    """
    from tests.network.factories import make_network, make_site_with_key, make_target
    from tests.scheduling.helpers import clear_skies

    settings.DATAS_WEATHER_MAX_AGE_SECONDS = 400 * 86400

    def make(latitude, longitude, filters, timezone="UTC", **target_fields):
        dark = deepest_night_with_this_sky(latitude, longitude)
        monkeypatch.setattr("scheduling.passes._now", lambda: dark)
        network = make_network("Hardware night")
        site, key = make_site_with_key(network, latitude=latitude, longitude=longitude, elevation_m=300,
                                       timezone=timezone, filters=filters)
        # An open-shutter goal of one frame per filter: the scheduler's plan, which the agent
        # follows, is then one frame per filter (a light curve's many points come visit by visit).
        frames = len(target_fields.get("required_filters") or [None])
        target_fields.setdefault("total_hours", frames * target_fields.get("exposure_sec", 60.0) / 3600.0)
        target = make_target(network, priority=5.0, min_observations=500, **target_fields)
        clear_skies(site, at=dark)
        return site, key, target

    return make


def deepest_night_with_this_sky(latitude, longitude):
    """The time within a year, whole sidereal days from now, when the Sun is lowest (Moon below 50 deg).

    ``same_sky_in_the_dark`` wants astronomical darkness, which latitude 50 lacks at some
    sidereal times around midsummer; the scheduler needs nautical darkness with time left in
    the night, which the middle of the night gives.
    """
    import datetime as dt

    import numpy as np
    from datas_pipeline.sky.visibility import moon_altaz, sun_altaz

    times = dt.datetime.now(dt.UTC).timestamp() + np.arange(1, 400) * 86400.0 / 1.00273790935
    sun = sun_altaz(latitude, longitude, times)[0][0]
    moon = moon_altaz(latitude, longitude, times)[0][0]
    k = int(np.argmin(np.where(moon < 50.0, sun, 90.0)))
    assert sun[k] < -12.0, f"no nautical night at latitude {latitude} with this sidereal time"
    return dt.datetime.fromtimestamp(float(times[k]), dt.UTC)


def point_at_portal(path, url, key, site):
    """Rewrite a device test's configuration for the live portal and this site's key."""
    text = path.read_text().replace('site_id: "7"', f'site_id: "{site.id}"')
    path.write_text(text.replace("http://127.0.0.1:9", url))
    (path.parent / "site.key").write_text(key + "\n")
    return path


def assert_observed_with_photometry(site, target, filters, instrument):
    observations = stored(site)
    assert sorted(o.filter for o in observations) == sorted(filters)
    for obs in observations:
        assert obs.target_id == target.id
        # Errors assume 1 e-/ADU where a header gives no EGAIN (the simulators' GAIN is a setting):
        # the INDI frames then show a modest S/N (5-40), the others (with a gain in e-/ADU) far more.
        assert obs.magnitude is not None and 0 < obs.magnitude_error < 0.22
        assert obs.photometry_method == "instrumental"
        assert obs.fits_header["INSTRUME"] == instrument and obs.fits_header["OBJECT"] == target.name
        assert obs.fits_header["FILTER"] == obs.filter
    site.refresh_from_db()
    assert site.status == "observing"
    return observations


@pytest.mark.skipif(indi_available() is not None, reason=str(indi_available()))
def test_a_night_with_the_indi_simulators(tasking, live_server, tmp_path):
    star, _ = real_star_near_zenith()
    site, key, target = tasking(SITE_LAT, SITE_LON, WHEEL, timezone="Europe/Berlin", name="TYC near zenith",
                                ra_deg=float(star.ra), dec_deg=float(star.dec), magnitude=float(star.mag),
                                required_filters=["Green"], exposure_sec=2)
    server = IndiServer(tmp_path / "indi")
    (tmp_path / "indi").mkdir()
    server.start()
    try:
        config = point_at_portal(indi_config(tmp_path, server.port), live_server.url, key, site)
        result = run_agent("run", "--cycles", "1", str(config), timeout=120)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "slewing to TYC near zenith" in result.stderr
    (obs,) = assert_observed_with_photometry(site, target, ["Green"], "CCD Simulator")
    assert "position_assumed" in obs.quality_flags   # INDI's simulator frames carry no WCS


@pytest.mark.skipif(alpaca_available() is not None, reason=str(alpaca_available()))
def test_a_night_with_the_alpaca_simulators(tasking, live_server, tmp_path):
    star, _ = real_star_near_zenith()
    site, key, target = tasking(SITE_LAT, SITE_LON, WHEEL, timezone="Europe/Berlin", name="TYC star",
                                ra_deg=float(star.ra), dec_deg=float(star.dec), magnitude=float(star.mag),
                                required_filters=["Green", "Blue"], exposure_sec=2)
    (tmp_path / "alpaca").mkdir()
    server = AlpacaSimulators(tmp_path / "alpaca", SITE_LAT, SITE_LON).start()
    try:
        config = point_at_portal(alpaca_config(tmp_path, server.address), live_server.url, key, site)
        result = run_agent("run", "--cycles", "1", str(config), timeout=120)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    observations = assert_observed_with_photometry(site, target, ["Green", "Blue"], "Simulator Camera")
    # Its mount works in J2000 and the camera renders the catalogue: the target is the star at
    # the centre, so both filters measure the same VT 8-9 star.
    assert all("target_not_found" not in o.quality_flags for o in observations)


def test_a_night_with_the_pi_camera_server(tasking, live_server, tmp_path):
    ra, dec = overhead()
    site, key, target = tasking(-30.24, -70.74, ["B", "V", "R"], timezone="America/Santiago",
                                name="Pi target", ra_deg=ra, dec_deg=dec, magnitude=11.0,
                                required_filters=["V", "R"], exposure_sec=2)
    proc, port = start_server(tmp_path)
    try:
        devices = "    camera: {backend: picamera}\n    mount: {backend: none}\n    filter_wheel: {backend: none}\n"
        config = write_config(tmp_path, live_server.url, api_key=key, site_id=str(site.id), devices=devices,
                              hardware_extra=f"  picamera: {{endpoint: 'tcp://127.0.0.1:{port}', timeout_s: 30}}\n")
        result = run_agent("run", "--cycles", "1", str(config), timeout=120)
    finally:
        stop_group(proc)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "slewing" not in result.stderr    # no mount: the camera looks where it was pointed
    observations = assert_observed_with_photometry(site, target, ["V", "R"], "synthetic sky")
    # The synthetic sky's central star is the target; both frames measure it alike.
    assert all("target_not_found" not in o.quality_flags for o in observations)
    assert abs(observations[0].magnitude - observations[1].magnitude) < 0.1
