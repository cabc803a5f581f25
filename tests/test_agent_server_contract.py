"""The scheduler and the site agent answer the same questions the same way.

The server plans a site's night from its Site record (scheduling.passes.site_spec: horizon,
minimum altitude, hour-angle limits, twilight, Moon distance) with the observable windows of
datas_pipeline.sky; the agent checks again just before it slews, from its own configuration
holding the same limits. Here both are asked the same cases: targets all over the sky, at
times through a day and a night, from sites with horizon profiles and hour-angle limits, and
filter requests against filter wheels (Ha against a wheel that says H-Alpha included). Any
difference would mean the agent skipping what the scheduler planned, or slewing to what it
would not have.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import get_body
from astropy.time import Time
from datas_agent.client import DatasClient
from datas_agent.config import AgentConfig, HardwareConfig, SafetyConfig, ServerConfig, SiteConfig
from datas_agent.loop import ObservingAgent, Target
from datas_agent.observability import check_visibility
from datas_agent.queue import Outbox
from datas_pipeline.sky.ephemeris import local_sidereal_deg
from datas_pipeline.sky.visibility import twilight_sun_altitude
from datas_pipeline.sky.windows import observable_windows
from django.conf import settings

from scheduling import SchedulerConfig, SiteSpec, TargetSpec, schedule_network
from scheduling.passes import site_spec
from tests.network.factories import make_network, make_site

# Edges: the scheduler bisects window edges to a fraction of a second, so a case within this
# many degrees of a limit may fall either side of it; such cases are not compared.
EDGE_DEG = 0.05
SITES = [
    # (name, latitude, longitude, elevation, horizon, min altitude, hour-angle limits east/west)
    ("Sutherland", -32.38, 20.81, 1798.0, [[0, 12], [90, 35], [180, 20], [270, 28]], 20.0, (None, None)),
    ("La Palma", 28.76, -17.88, 2396.0, [], 25.0, (-3.0, 3.5)),
    ("Fork mount", 51.48, 0.0, 45.0, [[45, 30], [315, 15]], 15.0, (-4.5, 2.0)),
]
WHEEL = ["L", "B", "V", "Rc", "H-Alpha", "OIII"]
KINDS = ("the Sun", "altitude", "hour angle", "the Moon")


def agent_config(site, tmp_path: Path, filters=()) -> AgentConfig:
    """The agent's configuration for a portal site, as its operator would write it (same limits)."""
    spec = site_spec(site)
    return AgentConfig(
        path=tmp_path / "agent.yaml",
        server=ServerConfig(url="http://127.0.0.1:9", site_id=str(site.pk), api_key="dsk_x", timeout_s=1.0),
        site=SiteConfig(site.latitude, site.longitude, site.elevation_m,
                        horizon=tuple((float(a), float(h)) for a, h in sorted(site.horizon))),
        hardware=HardwareConfig(backend="simulator", devices={}, filters=tuple(filters)),
        safety=SafetyConfig(min_altitude_deg=site.min_altitude_deg,
                            max_sun_altitude_deg=twilight_sun_altitude(settings.DATAS_SCHEDULE_TWILIGHT),
                            hour_angle_limits_h=spec.ha_limits_hours,
                            min_moon_separation_deg=settings.DATAS_SCHEDULE_MOON_SEPARATION_DEG),
        data_dir=tmp_path / "data",
    )


@pytest.mark.django_db
def test_scheduler_and_agent_agree_on_what_is_observable(tmp_path):
    network = make_network()
    rng = np.random.default_rng(11)
    start = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)  # a waxing gibbous Moon, up in the evening
    times = [start + timedelta(minutes=37 * k) for k in range(40)]  # a day and a night, off the grid
    # All over the sky, plus a ring of targets 5-25 degrees from the Moon that night.
    moon = get_body("moon", Time(start + timedelta(hours=8)))
    ring = moon.directional_offset_by(np.linspace(0, 360, 24, endpoint=False) * u.deg,
                                      np.tile([5.0, 12.0, 25.0], 8) * u.deg).icrs
    ra = np.concatenate([rng.uniform(0, 360, 150), ring.ra.deg])
    dec = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, 150))), ring.dec.deg])
    compared, reasons = 0, set()
    for name, lat, lon, elev, horizon, min_alt, (east, west) in SITES:
        site = make_site(network, name=name, latitude=lat, longitude=lon, elevation_m=elev, horizon=horizon,
                         min_altitude_deg=min_alt, ha_limit_east_h=east, ha_limit_west_h=west, filters=WHEEL)
        config = agent_config(site, tmp_path)
        # The scheduler's answer: inside one of the target's observable windows of the period.
        windows = observable_windows(ra, dec, [site_spec(site).observatory], times[0] - timedelta(hours=1),
                                     times[-1] + timedelta(hours=1), step_s=300.0)
        for when in times:
            t = when.timestamp()
            agent = check_visibility(ra, dec, when, config.site, config.safety)
            for i, verdict in enumerate(agent):
                if abs(verdict.margin_deg) < EDGE_DEG:
                    continue
                server = any(w.start <= t <= w.end for w in windows[i][0])
                assert verdict.observable == server, (name, when, ra[i], dec[i], verdict)
                compared += 1
                if verdict.reason:
                    reasons.add(next(k for k in KINDS if k in verdict.reason))
    assert compared > 15000
    # Every kind of limit was exercised: the Sun, the altitude limits, the hour angle, the Moon.
    assert reasons == set(KINDS)


@pytest.mark.parametrize(("requested", "wheel", "expected"), [
    (["Ha"], WHEEL, ["H-Alpha"]),                      # by band: the wheel's own name
    (["H-alpha", "O3"], WHEEL, ["H-Alpha", "OIII"]),
    (["V", "R"], WHEEL, ["V", "Rc"]),
    (["v"], ["V", "Johnson V"], ["V"]),               # an exact name wins over the band
    (["B", "Blue"], WHEEL, ["B"]),                     # one band once
    (["SII"], WHEEL, []),                              # not on this wheel: neither observes it
    ([], WHEEL, ["L"]),                                # nothing asked: luminance/clear
    ([], ["R", "G", "B"], ["R"]),                      # ... or the first slot
])
def test_scheduler_and_agent_choose_the_same_filters(tmp_path, requested, expected, wheel):
    now = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
    # The scheduler's plan for a target overhead at a dark site, in the wheel's names ...
    site = SiteSpec(id=1, name="S", latitude_deg=0.0, longitude_deg=0.0, filters=tuple(wheel), min_altitude_deg=10.0,
                    weather="clear", weather_reported_at=now.timestamp())
    ra_overhead = float(local_sidereal_deg(now.timestamp(), 0.0))
    target = TargetSpec(id=7, name="T", ra_deg=ra_overhead, dec_deg=0.0, filters=tuple(requested), exposure_sec=30.0)
    plan = schedule_network([target], [site], now, SchedulerConfig())
    entries = plan.sites[1].entries
    server = list(dict.fromkeys(step.filter for step in entries[0].filter_plan)) if entries else []
    # ... and the agent's choice, from the target's raw requirements and from the served plan.
    agent = ObservingAgent(agent_config_for_wheel(tmp_path, wheel), DatasClient("http://127.0.0.1:9", "k", "1"),
                           Outbox(tmp_path / "queue.sqlite"))
    raw = Target.from_api({"id": 7, "name": "T", "ra_deg": 0.0, "dec_deg": 0.0,
                           "observation_requirements": {"filters": requested}})
    assert agent.choose_filters(raw)[0] == expected
    if expected:
        assert server == expected
        served = Target.from_api({"id": 7, "name": "T", "ra_deg": 0.0, "dec_deg": 0.0, "plan": {"filter_plan": [
            {"filter": s.filter, "exposure_sec": s.exposure_sec, "count": s.count} for s in entries[0].filter_plan]}})
        assert agent.choose_filters(served)[0] == expected
    else:
        assert not entries or not entries[0].filter_plan  # the scheduler does not plan it either
        assert agent.choose_steps(raw)[1] is not None      # and the agent says why it skips it


def agent_config_for_wheel(tmp_path: Path, wheel) -> AgentConfig:
    return AgentConfig(
        path=tmp_path / "agent.yaml",
        server=ServerConfig(url="http://127.0.0.1:9", site_id="1", api_key="dsk_x", timeout_s=1.0),
        site=SiteConfig(0.0, 0.0), hardware=HardwareConfig(backend="simulator", devices={}, filters=tuple(wheel)),
        safety=SafetyConfig(), data_dir=tmp_path / "data",
    )
