"""Observable windows: altitude, horizon profile, hour-angle, twilight, moon and availability limits."""
import datetime as dt

import numpy as np
import pytest
from datas_pipeline.sky import ephemeris as eph
from datas_pipeline.sky import visibility as vis
from datas_pipeline.sky.windows import availability_margin, best_time, observable_windows

from tests.pipeline.sky import reference as ref

NIGHT_START = float(eph.to_unix(dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)))
NIGHT_END = NIGHT_START + 86400.0
HAUTE_PROVENCE = ref.SITES["haute_provence"]


@pytest.fixture(scope="module")
def stars():
    rng = np.random.default_rng(7)
    ra = rng.uniform(0, 360, 60)
    dec = rng.uniform(-20, 80, 60)
    return ra, dec


def _sample_inside_and_outside(windows, night, margin_s=180.0):
    """Grid times at least ``margin_s`` away from any window edge, split into inside/outside."""
    grid = np.arange(night[0] + margin_s, night[1] - margin_s, 600.0)
    inside = np.zeros(grid.shape, bool)
    near_edge = np.zeros(grid.shape, bool)
    for w in windows:
        inside |= (grid >= w.start) & (grid <= w.end)
        near_edge |= (np.abs(grid - w.start) < margin_s) | (np.abs(grid - w.end) < margin_s)
    return grid[inside & ~near_edge], grid[~inside & ~near_edge]


def test_every_window_edge_is_a_limit_crossing_per_astropy(stars):
    ra, dec = stars
    lat, lon, elev = HAUTE_PROVENCE
    site = vis.Observatory(lat, lon, elev, min_altitude_deg=30.0, twilight="nautical")
    result = observable_windows(ra, dec, [site], NIGHT_START, NIGHT_END, step_s=300)
    nights = vis.dark_intervals(lat, lon, NIGHT_START, NIGHT_END, -12.0)[0]
    night_edges = np.array([t for pair in nights for t in pair])
    checked = 0
    for i in range(ra.size):
        for w in result[i][0]:
            for edge in (w.start, w.end):
                if np.abs(night_edges - edge).min() < 1.0:
                    continue  # a twilight edge, checked in test_visibility
                alt, _ = ref.star_altaz(ra[i], dec[i], lat, lon, [edge], elev, site.pressure, site.temperature_c)
                assert alt[0, 0] == pytest.approx(30.0, abs=1 / 60)
                checked += 1
    assert checked > 20


def test_horizon_profile_is_respected(stars):
    ra, dec = stars
    lat, lon, elev = HAUTE_PROVENCE
    wall = vis.HorizonProfile.from_points([(40, 5), (45, 55), (135, 55), (140, 5), (300, 5)])
    site = vis.Observatory(lat, lon, elev, min_altitude_deg=10.0, horizon=wall, twilight="nautical")
    result = observable_windows(ra, dec, [site], NIGHT_START, NIGHT_END, step_s=300)
    night = vis.dark_intervals(lat, lon, NIGHT_START, NIGHT_END, -12.0)[0][0]
    blocked_by_wall = 0
    for i in range(ra.size):
        inside, outside = _sample_inside_and_outside(result[i][0], night)
        for times, expect_ok in ((inside, True), (outside, False)):
            if times.size == 0:
                continue
            alt, az = ref.star_altaz(ra[i], dec[i], lat, lon, times, elev, site.pressure, site.temperature_c)
            limit = site.limit_altitude(az[0])
            assert np.all((alt[0] >= limit - 0.05) == expect_ok)
            blocked_by_wall += int(np.sum(~expect_ok & (alt[0] > 10) & (alt[0] < 55) & (az[0] > 45) & (az[0] < 135)))
    assert blocked_by_wall > 10  # the wall did hide targets that the flat limit would allow


def test_hour_angle_limits_are_respected(stars):
    ra, dec = stars
    lat, lon, elev = HAUTE_PROVENCE
    site = vis.Observatory(lat, lon, elev, min_altitude_deg=0.0, ha_limits_hours=(-2.0, 1.5), twilight="nautical")
    result = observable_windows(ra, dec, [site], NIGHT_START, NIGHT_END, step_s=300)
    hits = 0
    for i in range(ra.size):
        for w in result[i][0]:
            times = np.linspace(w.start, w.end, 7)
            ha = vis.altaz([ra[i]], [dec[i]], [lat], [lon], times).hour_angle_h[0, 0]
            assert ha.min() >= -2.0 - 0.005 and ha.max() <= 1.5 + 0.005
            assert w.duration_s <= 3.5 * 3600 / eph.SIDEREAL_RATE + 1
            hits += 1
    assert hits > 10


def test_windows_lie_inside_the_night_and_best_time_is_the_transit():
    lat, lon, elev = HAUTE_PROVENCE
    site = vis.Observatory(lat, lon, elev, min_altitude_deg=20.0, twilight="astronomical", pressure_hpa=0.0)
    night = vis.dark_intervals(lat, lon, NIGHT_START, NIGHT_END, -18.0)[0][0]
    # A star that transits in the middle of the night, high in the south.
    mid = 0.5 * (night[0] + night[1])
    lst = float(eph.local_sidereal_deg(mid, lon))
    windows = observable_windows([lst], [20.0], [site], NIGHT_START, NIGHT_END, step_s=600)[0][0]
    assert len(windows) == 1
    w = windows[0]
    assert night[0] - 1 <= w.start and w.end <= night[1] + 1
    transit = vis.rise_transit_set([lst], [20.0], [lat], [lon], mid - 3 * 3600).transit[0, 0]
    assert w.best_time == pytest.approx(transit, abs=120)
    assert w.best_altitude_deg == pytest.approx(90 - (lat - 20.0), abs=0.5)  # precession moves dec a little
    assert best_time(windows) is w and best_time([]) is None


def test_moon_separation_limit_blocks_a_target_next_to_the_moon():
    lat, lon, elev = ref.SITES["la_palma"]
    start = float(eph.to_unix(dt.datetime(2026, 3, 1, 18, tzinfo=dt.UTC)))
    end = start + 14 * 3600
    # Where the Moon is at local midnight, as astropy says (ICRS).
    midnight = start + 6 * 3600
    _, _, moon = ref.moon_altaz(lat, lon, [midnight], elev)
    from astropy.coordinates import ICRS
    moon_icrs = moon.transform_to(ICRS())
    ra, dec = float(moon_icrs.ra.deg[0]), float(moon_icrs.dec.deg[0])
    near = vis.Observatory(lat, lon, elev, min_altitude_deg=10.0, twilight="nautical")
    avoid = vis.Observatory(lat, lon, elev, min_altitude_deg=10.0, twilight="nautical", min_moon_separation_deg=25.0)
    free, blocked = observable_windows([ra], [dec], [near, avoid], start, end)[0]
    assert sum(w.duration_s for w in free) > 3 * 3600
    moon_alt, _, _ = vis.moon_altaz(lat, lon, [midnight], elev)
    assert moon_alt[0, 0] > 10
    assert not any(w.start <= midnight <= w.end for w in blocked)


def test_availability_cuts_windows():
    lat, lon, elev = HAUTE_PROVENCE
    site = vis.Observatory(lat, lon, elev, min_altitude_deg=20.0, twilight="astronomical")
    night = vis.dark_intervals(lat, lon, NIGHT_START, NIGHT_END, -18.0)[0][0]
    mid = 0.5 * (night[0] + night[1])
    lst = float(eph.local_sidereal_deg(mid, lon))
    slot = (mid - 3600.0, mid + 1800.0)
    always, limited, never = observable_windows([lst], [40.0], [site] * 3, NIGHT_START, NIGHT_END,
                                                availability=[None, [slot], []])[0]
    assert always[0].duration_s > 6 * 3600
    assert len(limited) == 1
    assert limited[0].start == pytest.approx(slot[0], abs=5) and limited[0].end == pytest.approx(slot[1], abs=5)
    assert never == []
    margin = availability_margin(np.array([slot[0] - 240, mid, slot[1] + 240]), [slot])
    assert margin[0] < 0 < margin[1] and margin[2] < 0


def test_bad_periods_are_refused():
    site = vis.Observatory(10.0, 10.0)
    with pytest.raises(vis.VisibilityError, match="end after it starts"):
        observable_windows([0.0], [0.0], [site], NIGHT_END, NIGHT_START)
