"""End to end: the real portal (pytest-django live server) and `datas-agent run` with simulated hardware.

The agent runs as its own process, as at a site, against the server's real API v1 over HTTP.
"""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest
from datas_agent.config import load_config
from datas_agent.queue import Outbox

from tests.agent.conftest import agent_env, write_config
from tests.agent.test_loop import overhead

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def night(live_server, tmp_path, monkeypatch, settings):
    """A network with one site (its key) and two targets up now at the site, one a Ha target.

    The portal's scheduler only hands out targets in the dark and with a fresh weather report:
    its clock is frozen at a night with the same sidereal time as now, the site reports clear,
    and the agent's heartbeats (stamped with the real time, months before that night) count
    as fresh.
    """
    from observations.models import Observation  # noqa: F401 - Django is ready inside the fixture
    from tests.network.factories import make_network, make_site_with_key, make_target
    from tests.scheduling.helpers import clear_skies, same_sky_in_the_dark

    dark = same_sky_in_the_dark(-30.24, -70.74)
    monkeypatch.setattr("scheduling.passes._now", lambda: dark)
    settings.DATAS_WEATHER_MAX_AGE_SECONDS = 400 * 86400

    network = make_network("Variable star club")
    site, key = make_site_with_key(network, latitude=-30.24, longitude=-70.74, elevation_m=2200,
                                   timezone="America/Santiago", filters=["B", "V", "R"])
    ra, dec = overhead()
    # A light curve wants many points: the scheduler drops a target once its goals are met. Its
    # open-shutter goal (two 5 s frames) makes the scheduler's plan, which the agent follows,
    # one frame per filter.
    target = make_target(network, name="Zenith var", ra_deg=ra, dec_deg=dec, magnitude=11.0, priority=5.0,
                         required_filters=["V", "R"], exposure_sec=5, min_observations=500, total_hours=10 / 3600)
    clear_skies(site, at=dark)
    config = write_config(tmp_path, live_server.url, api_key=key, site_id=str(site.id))
    return {"site": site, "key": key, "target": target, "config": config, "network": network}


def run_agent(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "datas_agent", *args], env=agent_env(), capture_output=True,
                          text=True, timeout=timeout)


def stored(site):
    from observations.models import Observation

    return list(Observation.objects.filter(site=site).order_by("observed_at"))


def test_a_night_poll_slew_expose_measure_upload(night):
    result = run_agent("run", "--cycles", "1", str(night["config"]))
    assert result.returncode == 0, result.stderr[-3000:]
    observations = stored(night["site"])
    assert sorted(o.filter for o in observations) == ["R", "V"]
    for obs in observations:
        assert obs.target_id == night["target"].id
        assert obs.magnitude is not None and obs.magnitude_error < 0.05
        assert obs.photometry_method == "instrumental"
        assert 1.0 <= obs.airmass < 1.1 and obs.exposure_sec == 5
        assert obs.fits_header["OBJECT"] == "Zenith var" and obs.fits_header["FILTER"] == obs.filter
    night["site"].refresh_from_db()
    assert night["site"].last_seen is not None and night["site"].status == "observing"
    # Both frames of the same star agree.
    assert abs(observations[0].magnitude - observations[1].magnitude) < 0.05


def queued(queue_path) -> int:
    """Observations the agent has committed to its outbox so far (0 before it exists)."""
    if not queue_path.exists():
        return 0
    with Outbox(queue_path) as outbox:
        return sum(outbox.counts().values())


def test_sigkill_mid_upload_and_server_outage_every_observation_once(night, tmp_path):
    """Kill the agent with SIGKILL again and again while it observes and uploads; nothing is lost or doubled."""
    config = night["config"]
    config.write_text(config.read_text().replace("  devices:", "  simulator: {real_time_s: 0.3}\n  devices:"))
    queue_path = load_config(config).queue_path
    rng = random.Random(7)
    for round_ in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "datas_agent", "run", str(config)], env=agent_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill only once this run has taken a frame of its own, at a random moment after it
        # (mid-exposure, mid-write or mid-upload), so every round really interrupts work.
        deadline = time.monotonic() + 90
        while queued(queue_path) <= round_ and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    flush = run_agent("upload", str(config))
    assert flush.returncode == 0, flush.stderr
    with Outbox(load_config(config).queue_path) as outbox:
        counts = outbox.counts()
        taken = [str(i.observation_id) for i in outbox.items(states=("sent",), limit=100000)]
    assert counts["pending"] == counts["record_sent"] == counts["rejected"] == 0
    on_server = [str(o.observation_id) for o in stored(night["site"])]
    assert len(taken) >= 4 and sorted(on_server) == sorted(taken)   # each exactly once
    assert len(set(on_server)) == len(on_server)


def test_revoked_key_is_a_clear_message_and_nothing_is_dropped(night):
    from sites.models import SiteKey
    from sites.services import revoke_site_key

    assert run_agent("run", "--cycles", "1", str(night["config"])).returncode == 0
    before = len(stored(night["site"]))
    for key in SiteKey.objects.filter(site=night["site"]):
        revoke_site_key(key)
    result = run_agent("run", "--cycles", "1", str(night["config"]))
    assert result.returncode == 0
    assert "site key was revoked" in result.stderr and "Traceback" not in result.stderr
    assert len(stored(night["site"])) == before
    status = run_agent("status", str(night["config"]))
    assert "pending" in status.stdout


def test_a_400_is_logged_with_the_servers_reason_and_not_retried(night):
    """The wheel says R but the portal's site record says Rc: the scheduler plans Rc, the agent takes
    it through its R (the same band), and the server, which holds sites to their recorded names,
    refuses the record; the agent says why."""
    night["site"].filters = ["B", "V", "Rc"]
    night["site"].save()
    result = run_agent("run", "--cycles", "1", str(night["config"]))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rejected observation" in result.stderr and "filter" in result.stderr
    assert [o.filter for o in stored(night["site"])] == ["V"]
    status = run_agent("status", str(night["config"]))
    assert "rejected 1" in status.stdout
    with Outbox(load_config(night["config"]).queue_path) as outbox:
        (rejected,) = outbox.items(states=("rejected",))
    assert rejected.record["filter"] == "R" and "filter" in rejected.last_error
    json.dumps(rejected.record)  # the record is kept intact for a later retry


def test_frames_go_up_with_their_records_through_the_agent_route(night, settings, tmp_path):
    """`upload_frames: true`: each FITS frame reaches POST /observations/{id}/frame and is linked there."""
    import hashlib

    from observations.models import Frame

    settings.STORAGES = {**settings.STORAGES, "frames": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "store")}}}
    settings.DATAS_SCRATCH_DIR = tmp_path / "scratch"
    settings.DATAS_PIPELINE_ON_UPLOAD = False
    config = night["config"]
    config.write_text(config.read_text() + "upload_frames: true\n")
    result = run_agent("run", "--cycles", "1", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    observations = stored(night["site"])
    assert len(observations) == 2
    frames_dir = load_config(config).frames_dir
    for obs in observations:
        frame = Frame.objects.get(observation=obs)
        local = next(frames_dir.rglob(f"*{obs.observation_id}.fits"))
        assert frame.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()
        assert frame.target_id == night["target"].id
    with Outbox(load_config(config).queue_path) as outbox:
        assert outbox.counts()["sent"] == 2 and outbox.counts()["rejected"] == 0
