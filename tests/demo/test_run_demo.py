"""``manage.py run_demo`` (``make run``): simulated agents at dark demo sites, their keys and files, no orphans."""
from __future__ import annotations

import math
import os
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from demo.agents import (
    AGENT_KEY_LABEL,
    MIN_DARK_HOURS,
    DemoAgent,
    choose_demo_sites,
    prepare_demo_agents,
    prune_frames,
    write_agent_config,
)
from demo.services import SITES
from sites.models import Automation, Site
from sites.services import KeyRejected, authenticate_site_key, issue_site_key
from tests.demo.test_darkness import almanac_sun_altitude
from tests.network.factories import make_network, make_site

AGENT_SRC = Path(__file__).resolve().parents[2] / "agent"
if str(AGENT_SRC) not in sys.path:
    sys.path.insert(0, str(AGENT_SRC))


def demo_sites() -> list[Site]:
    """The thirteen demo sites as unsaved rows (the choice reads only place and automation)."""
    return [Site(pk=index, name=name, latitude=lat, longitude=lon, elevation_m=elevation, automation=automation)
            for index, (_, name, lat, lon, elevation, *_, automation, _online) in enumerate(SITES, start=1)]


def hours_until_dark(site: Site, now: datetime) -> float:
    """Independent truth: step the almanac's Sun forward a minute at a time."""
    for minute in range(36 * 60):
        if almanac_sun_altitude(site.latitude, site.longitude, now + timedelta(minutes=minute)) < -12.0:
            return minute / 60.0
    return math.inf


def test_agents_go_to_sites_with_a_night_ahead_robotic_first():
    now = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)  # night over the Americas
    chosen = choose_demo_sites(demo_sites(), now, 3)
    assert len(chosen) == 3
    for site, darkness in chosen:
        assert almanac_sun_altitude(site.latitude, site.longitude, now) < -12.0, site.name
        assert darkness.dark_now and darkness.dark_hours >= MIN_DARK_HOURS
        assert site.automation == Automation.ROBOTIC
    assert [d.dark_hours for _, d in chosen] == sorted((d.dark_hours for _, d in chosen), reverse=True)


def test_a_site_whose_night_ends_within_the_hour_loses_to_a_manual_site_with_a_night_ahead():
    now = datetime(2026, 11, 21, 12, 25, tzinfo=UTC)
    chosen = choose_demo_sites(demo_sites(), now, 3)
    # Siding Spring is the one robotic site with a night ahead; Kitt Peak and Mayhill (robotic)
    # are in their last hour of darkness, so the manual and semi-automatic sites with long
    # nights come next, longest first.
    assert [site.name for site, _ in chosen] == ["Siding Spring 0.5m", "Xinglong China", "Mount John Tekapo"]
    ending = {site.name: d for site, d in choose_demo_sites(demo_sites(), now, 13)}
    assert ending["Kitt Peak Arizona"].dark_now and ending["Kitt Peak Arizona"].dark_hours < MIN_DARK_HOURS
    for site, _ in chosen:
        assert hours_until_dark(site, now) == 0.0


def test_when_no_site_is_dark_the_soonest_dark_come_first_and_say_so(tmp_path):
    now = datetime(2026, 11, 21, 12, 25, tzinfo=UTC)
    daylight = [s for s in demo_sites() if s.name in ("La Palma 0.4m", "Nerpio Spain", "El Sauce Chile")]
    chosen = choose_demo_sites(daylight, now, 2)
    waits = {s.name: hours_until_dark(s, now) for s in daylight}
    expected = sorted(waits, key=waits.get)[:2]
    assert [s.name for s, _ in chosen] == expected
    for site, darkness in chosen:
        assert not darkness.dark_now
        assert darkness.hours_until_dark == pytest.approx(waits[site.name], abs=0.1)
        assert "idle until dark in" in DemoAgent(site=site, darkness=darkness, directory=tmp_path).describe()
    assert choose_demo_sites(daylight, now, 0) == [] and choose_demo_sites([], now, 3) == []


@pytest.mark.django_db
def test_each_run_rotates_the_agent_key_and_writes_it_privately(tmp_path):
    vsnet = make_network("Variable Star Network", slug="vsnet")
    site = make_site(vsnet, name="Siding Spring 0.5m", latitude=-31.27, longitude=149.06, filters=["B", "V", "Rc"])
    kept = issue_site_key(site, label="demo agent").plaintext  # load_demo's, which a person may have copied
    now = datetime(2026, 11, 21, 12, 25, tzinfo=UTC)

    (first,) = prepare_demo_agents(1, tmp_path / "agents", now, sites=[site])
    assert first.key_path == tmp_path / "agents" / "vsnet-siding-spring-05m.key"
    assert stat.S_IMODE(first.key_path.stat().st_mode) == 0o600
    assert first.key_path.read_text().strip() == first.key
    assert authenticate_site_key(first.key).site_id == site.pk

    first.key_path.chmod(0o644)  # a loosened file is tightened again when rewritten
    (second,) = prepare_demo_agents(1, tmp_path / "agents", now, sites=[site])
    assert stat.S_IMODE(second.key_path.stat().st_mode) == 0o600
    assert second.key_path.read_text().strip() == second.key != first.key
    with pytest.raises(KeyRejected, match="revoked"):
        authenticate_site_key(first.key)
    assert authenticate_site_key(second.key).site_id == site.pk
    assert authenticate_site_key(kept).site_id == site.pk
    assert site.keys.filter(label=AGENT_KEY_LABEL, revoked_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_the_written_configuration_is_one_the_agent_accepts(tmp_path):
    from datas_agent.config import load_config

    exonet = make_network("Exoplanet Transit Network", slug="exonet")
    site = make_site(exonet, name="Xinglong China", latitude=40.3956, longitude=117.575, elevation_m=900,
                     filters=["R", "I"], focal_length_mm=2400, pixel_size_um=5.86, aperture_mm=300,
                     horizon=[[0, 15], [180, 10]], min_altitude_deg=25)
    (agent,) = prepare_demo_agents(1, tmp_path, datetime(2026, 11, 21, 12, 25, tzinfo=UTC), sites=[site])
    config = load_config(write_agent_config(agent, "http://127.0.0.1:8123"))
    assert config.server.url == "http://127.0.0.1:8123" and config.server.site_id == str(site.pk)
    assert config.server.api_key == agent.key
    assert (config.site.latitude_deg, config.site.longitude_deg, config.site.elevation_m) == (40.3956, 117.575, 900)
    assert config.site.horizon == ((0.0, 15.0), (180.0, 10.0))
    assert config.hardware.backend == "simulator" and config.hardware.filters == ("R", "I")
    assert config.hardware.pixel_scale_arcsec == pytest.approx(site.pixel_scale_arcsec)
    assert config.safety.min_altitude_deg == 25 and config.safety.max_sun_altitude_deg == -12
    assert config.data_dir == tmp_path / "exonet-xinglong-china"
    assert config.poll_interval_s <= 30
    assert agent.key not in agent.config_path.read_text()


@pytest.mark.django_db
def test_without_the_demo_it_says_what_to_run_before_serving():
    with pytest.raises(CommandError, match="run `manage.py load_demo` first"):
        call_command("run_demo", "127.0.0.1:0", agents=1)
    with pytest.raises(CommandError, match="--agents must be 0 or more"):
        call_command("run_demo", "127.0.0.1:0", agents=-1)


def test_old_frames_are_pruned_and_recent_ones_and_the_queue_kept(tmp_path):
    frames = tmp_path / "frames" / "20261121"
    frames.mkdir(parents=True)
    now = 1_800_000_000.0
    ages = {"old.fits": 3600, "recent.fits": 600, "writing.fits.part": 3600}
    for name, age in ages.items():
        (frames / name).write_bytes(b"SIMPLE")
        os.utime(frames / name, (now - age, now - age))
    (tmp_path / "queue.sqlite3").write_bytes(b"")
    os.utime(tmp_path / "queue.sqlite3", (now - 7200, now - 7200))
    assert prune_frames(tmp_path / "frames", older_than_s=1800, now=now) == 1
    assert sorted(p.name for p in frames.iterdir()) == ["recent.fits", "writing.fits.part"]
    assert (tmp_path / "queue.sqlite3").exists()
    assert prune_frames(tmp_path / "missing", older_than_s=1800, now=now) == 0
