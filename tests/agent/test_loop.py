"""The observing loop with the simulator against a real HTTP server: a whole night in miniature."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import astropy.units as u
import pytest
from astropy.coordinates import EarthLocation
from astropy.io import fits
from astropy.time import Time
from datas_agent.client import DatasClient
from datas_agent.config import load_config
from datas_agent.loop import ObservingAgent, Target
from datas_agent.queue import Outbox

from tests.agent.conftest import agent_env, write_config
from tests.agent.fake_portal import FakePortal

REQUIRED_CARDS = ("DATE-OBS", "EXPTIME", "FILTER", "OBJECT", "RA", "DEC", "SITELAT", "SITELONG", "AIRMASS",
                  "IMAGETYP", "INSTRUME", "TELESCOP", "GAIN", "CCD-TEMP")


def overhead(dec=-30.0, minutes_east=0.0):
    """J2000 (ra, dec) near the meridian of the test site (lat -30.24, lon -70.74) now."""
    lon = EarthLocation.from_geodetic(-70.74 * u.deg, -30.24 * u.deg).lon
    lst = Time(datetime.now(UTC)).sidereal_time("mean", longitude=lon).deg
    return (lst + minutes_east / 4.0) % 360.0, dec


def night_targets():
    ra, dec = overhead()
    return [
        {"id": 11, "name": "Zenith var", "ra_deg": ra, "dec_deg": dec, "magnitude": 11.5, "priority": 5,
         "observation_requirements": {"filters": ["V", "R"], "exposure_sec": 5}},
        {"id": 12, "name": "Polaris", "ra_deg": 37.95, "dec_deg": 89.26},
        {"id": 13, "name": "Needs Ha", "ra_deg": ra, "dec_deg": dec - 5,
         "observation_requirements": {"filters": ["Ha"]}},
    ]


def make_agent(tmp_path, portal, **kwargs):
    config = load_config(write_config(tmp_path, portal.url, **kwargs))
    outbox = Outbox(config.queue_path)
    return ObservingAgent(config, DatasClient(portal.url, "dsk_test", "7", timeout_s=5), outbox), config


def test_target_entry_parsing():
    target = Target.from_api({"id": 3, "name": "X", "ra_deg": 361.0, "dec_deg": 5,
                              "observation_requirements": {"filters": ["V"], "exposure_sec": 12, "frames": 2}})
    assert (target.ra_deg, target.filters, target.exposure_s, target.frames_per_filter) == (1.0, ("V",), 12.0, 2)
    with pytest.raises(ValueError, match="has no ra_deg"):
        Target.from_api({"name": "Y"})


def test_one_cycle_observes_what_is_up_and_explains_the_rest(tmp_path):
    with FakePortal(targets=night_targets()) as portal:
        agent, config = make_agent(tmp_path, portal)
        report = agent.cycle()
        agent.rig.close()
    assert len(report.observed) == 2 and report.status == "observing"
    assert "below the limit" in report.skipped["Polaris"]
    assert "none of its filters (Ha) is in this wheel (B, V, R)" in report.skipped["Needs Ha"]
    # It checks in (with its weather) before asking for the list, and says so when it starts observing.
    assert portal.calls[:2] == ["heartbeat", "targets"]
    assert [h["status"] for h in portal.heartbeats] == ["idle", "observing"]
    assert portal.heartbeats[0]["weather_status"] == "clear"
    observations = list(portal.observations.values())
    assert [o["filter"] for o in observations] == ["V", "R"]
    for record in observations:
        assert record["target_id"] == 11 and record["exposure_sec"] == 5
        assert 1.0 <= record["airmass"] < 1.1
        assert record["photometry"]["method"] == "instrumental" and record["photometry"]["snr"] > 50
        assert record["astrometry"]["error_arcsec"] < 1.0
        assert record["seeing_arcsec"] > 0 and "target_not_found" not in record["quality_flags"]
        path = next(config.frames_dir.rglob(f"*{record['observation_id']}.fits"))
        header = fits.getheader(path)
        for card in REQUIRED_CARDS:
            assert card in header, card
        assert header["OBSID"] == record["observation_id"] and header["OBJECT"] == "Zenith var"
        assert header["DATE-OBS"] < record["observed_at"].rstrip("Z")
        assert fits.getdata(path).dtype.kind in "iu"
    # Both frames measure the same star: instrumental magnitudes agree within their errors.
    m = [o["photometry"]["magnitude"] for o in observations]
    assert abs(m[0] - m[1]) < 0.05


def test_a_request_for_ha_is_observed_through_the_wheels_h_alpha(tmp_path):
    """The scheduler matches filters by band; so does the agent (datas_pipeline.sky.filters)."""
    ra, dec = overhead()
    target = {"id": 21, "name": "Nebula", "ra_deg": ra, "dec_deg": dec,
              "observation_requirements": {"filters": ["Ha"], "exposure_sec": 2}}
    with FakePortal(targets=[target], filters=("B", "V", "H-Alpha")) as portal:
        agent, _ = make_agent(tmp_path, portal, filters="[B, V, H-Alpha]")
        report = agent.cycle()
        agent.rig.close()
    assert report.skipped == {} and len(report.observed) == 1
    assert [o["filter"] for o in portal.observations.values()] == ["H-Alpha"]


def test_the_agent_executes_the_schedulers_filter_plan(tmp_path):
    """``plan.filter_plan`` (the wheel's names, exposures, counts) wins over the raw requirements."""
    ra, dec = overhead()
    target = {"id": 22, "name": "Planned", "ra_deg": ra, "dec_deg": dec,
              "observation_requirements": {"filters": ["B"], "exposure_sec": 9},
              "plan": {"filter_plan": [{"filter": "R", "exposure_sec": 2, "count": 2},
                                       {"filter": "V", "exposure_sec": 3, "count": 1}]}}
    with FakePortal(targets=[target]) as portal:
        agent, _ = make_agent(tmp_path, portal)
        agent.cycle()
        agent.rig.close()
    done = list(portal.observations.values())  # in the order they were taken
    assert [(o["filter"], o["exposure_sec"]) for o in done] == [("R", 2), ("R", 2), ("V", 3)]
    with pytest.raises(ValueError, match="malformed filter plan"):
        Target.from_api({**target, "plan": {"filter_plan": [{"exposure_sec": 2}]}})


def test_an_unchanged_list_costs_a_304_and_is_observed_from_the_copy(tmp_path):
    with FakePortal(targets=night_targets()[:1]) as portal:
        agent, config = make_agent(tmp_path, portal)
        first = agent.cycle()
        second = agent.cycle()
        agent.rig.close()
    assert [c for c in portal.calls if c.startswith("targets")] == ["targets", "targets-304"]
    assert len(first.observed) == len(second.observed) == 2
    assert (config.data_dir / "ranked_targets.etag").read_text().startswith('"')


def test_unsafe_site_observes_nothing(tmp_path):
    with FakePortal(targets=night_targets()) as portal:
        agent, _ = make_agent(tmp_path, portal, hardware_extra="  simulator: {is_safe: false}\n")
        report = agent.cycle()
    assert report.observed == [] and report.status == "closed"
    assert "unsafe" in report.skipped["Zenith var"]
    assert portal.heartbeats[0]["status"] == "closed" and portal.observations == {}


def test_frames_go_up_when_the_server_asks(tmp_path):
    with FakePortal(targets=night_targets()[:1], frame_requested=True) as portal:
        agent, config = make_agent(tmp_path, portal)
        agent.cycle()
    assert set(portal.frames) == set(portal.observations) and len(portal.frames) == 2
    for oid, data in portal.frames.items():
        assert data == next(config.frames_dir.rglob(f"*{oid}.fits")).read_bytes()


def test_server_outage_observing_goes_on_and_everything_arrives_once(tmp_path):
    """Stop the server mid-night: the agent keeps observing from its cached list, then catches up."""
    portal = FakePortal(targets=night_targets()[:1]).start()
    port = portal.port
    config_path = write_config(tmp_path, portal.url, hardware_extra="  simulator: {real_time_s: 0.1}\n")
    run = [sys.executable, "-m", "datas_agent"]
    proc = subprocess.Popen([*run, "run", str(config_path)], env=agent_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(portal.observations) >= 2)
        portal.stop()                    # the server goes away for a while
        outage_start = time.time()
        time.sleep(2.0)
        stored = portal.observations
        portal = FakePortal(targets=night_targets()[:1])
        portal.observations = stored     # same database,
        outage_end = time.time()
        portal.start(port=port)          # back on the same address
        queue = load_config(config_path).queue_path

        def caught_up():
            with Outbox(queue) as outbox:
                during = [i.observation_id for i in outbox.items(states=("sent",), limit=10000)
                          if outage_start < i.created_at < outage_end]
            return len(during) >= 2 and set(during) <= set(portal.observations)
        wait_until(caught_up, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    try:
        assert proc.returncode == 0, err
        flush = subprocess.run([*run, "upload", str(config_path)], env=agent_env(), capture_output=True, text=True)
        assert flush.returncode == 0, flush.stderr
    finally:
        portal.stop()
    with Outbox(queue) as outbox:
        counts = outbox.counts()
        taken = [item.observation_id for item in outbox.items(states=("sent",), limit=10000)]
    assert counts["pending"] == counts["rejected"] == 0
    assert list(portal.observations) == taken   # every one arrived, once, in order
    assert "using the last one received" in err


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the agent")
        time.sleep(0.1)


def test_an_unreachable_sensor_costs_a_reconnect_not_the_agent(tmp_path, monkeypatch):
    """Found in review: a DriverError from the safety monitor escaped the cycle and ended the agent."""
    from datas_agent.errors import DriverError

    def unreachable(self):
        raise DriverError("Alpaca safety monitor at 127.0.0.1:11111 did not answer")

    monkeypatch.setattr("datas_agent.drivers.simulator.SimulatorBackend.conditions", unreachable)
    with FakePortal(targets=night_targets()) as portal:
        agent, _ = make_agent(tmp_path, portal)
        report = agent.cycle()
    assert report.status == "error" and agent.rig is None and portal.observations == {}
    assert agent.hardware_error.startswith("Alpaca safety monitor")


def test_a_full_disk_stops_observing_with_a_message_not_a_traceback(tmp_path, monkeypatch, caplog):
    """Found in review: ENOSPC while writing a frame escaped the cycle and ended the agent."""
    import errno

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("datas_agent.loop.write_frame_file", disk_full)
    with FakePortal(targets=night_targets()) as portal:
        agent, _ = make_agent(tmp_path, portal)
        report = agent.cycle()
        agent.rig.close()
    assert report.status == "error" and report.observed == []
    assert "No space left on device" in caplog.text and "observing stops" in caplog.text


def test_partial_frames_left_by_a_crash_are_cleared_in_dated_folders(tmp_path):
    from datas_agent.storage import remove_partial_files

    leftover = tmp_path / "frames" / "20261121" / ".x.fits.abc.part"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a frame")
    kept = leftover.parent / "done.fits"
    kept.write_bytes(b"a frame")
    assert remove_partial_files(tmp_path / "frames") == 1
    assert not leftover.exists() and kept.exists()


def test_a_sequence_stops_when_the_site_turns_unsafe(tmp_path):
    """Found in review: safety and altitude were read once a cycle, so a long sequence went on in rain."""
    with FakePortal(targets=night_targets()[:1]) as portal:
        agent, _ = make_agent(tmp_path, portal)
        take_frame = agent.take_frame

        def rain_after_the_first_frame(*args):
            observation_id = take_frame(*args)
            agent.rig.backends[0].is_safe = False
            return observation_id

        agent.take_frame = rain_after_the_first_frame
        report = agent.cycle()
        agent.rig.close()
    assert len(report.observed) == 1 and len(portal.observations) == 1  # V taken, R never started
