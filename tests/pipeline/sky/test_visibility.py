"""Altitude, azimuth, hour angle, airmass, rise/set and twilight against astropy."""
import datetime as dt

import numpy as np
import pytest
from datas_pipeline.sky import ephemeris as eph
from datas_pipeline.sky import visibility as vis

from tests.pipeline.sky import reference as ref

START_2026 = float(eph.to_unix(dt.datetime(2026, 1, 3, tzinfo=dt.UTC)))
# Twelve dates spread over a year, at odd hours so every site sees day and night.
YEAR = START_2026 + np.arange(12) * 30.4 * 86400 + np.arange(12) * 7919.0
SITE_NAMES = [name for name, (lat, _, _) in ref.SITES.items() if -70 <= lat <= 70]


@pytest.fixture(scope="module")
def sky():
    rng = np.random.default_rng(2026)
    ra = rng.uniform(0, 360, 150)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 150)))
    return ra, dec


def test_sites_cover_latitudes_minus_70_to_plus_70():
    lats = [ref.SITES[n][0] for n in SITE_NAMES]
    assert min(lats) < -24 and max(lats) > 69 and len(SITE_NAMES) >= 7


def test_altitude_and_azimuth_within_one_arcminute_of_astropy_over_a_year(sky):
    ra, dec = sky
    lat = np.array([ref.SITES[n][0] for n in SITE_NAMES])
    lon = np.array([ref.SITES[n][1] for n in SITE_NAMES])
    cube = vis.altaz(ra, dec, lat, lon, YEAR)
    worst_alt, worst_az = 0.0, 0.0
    for j, name in enumerate(SITE_NAMES):
        truth_alt, truth_az = ref.star_altaz(ra, dec, *ref.SITES[name][:2], YEAR)
        up = truth_alt > 0
        worst_alt = max(worst_alt, np.abs(cube.altitude_deg[:, j][up] - truth_alt[up]).max() * 60)
        daz = (cube.azimuth_deg[:, j] - truth_az + 180) % 360 - 180
        worst_az = max(worst_az, np.abs(daz * np.cos(np.radians(truth_alt)))[up].max() * 60)
    assert worst_alt <= 1.0 and worst_az <= 1.0
    # The budget is a minute of arc; the model actually holds a few arcseconds.
    assert worst_alt < 0.1


def test_apparent_altitude_with_refraction_within_one_arcminute_above_15_deg(sky):
    ra, dec = sky
    lat, lon, elev = ref.SITES["paranal"]
    pressure, temperature = 743.0, 12.0
    cube = vis.altaz(ra, dec, [lat], [lon], YEAR, pressure_hpa=pressure, temperature_c=temperature)
    truth_alt, _ = ref.star_altaz(ra, dec, lat, lon, YEAR, elev, pressure, temperature)
    high = truth_alt > 15
    assert np.abs(cube.apparent_altitude_deg[:, 0][high] - truth_alt[high]).max() * 60 < 1.0


def test_airmass_is_kasten_young_and_close_to_astropy_secz(sky):
    ra, dec = sky
    lat, lon, elev = ref.SITES["la_palma"]
    cube = vis.altaz(ra, dec, [lat], [lon], YEAR, pressure_hpa=0.0)
    truth_alt, _ = ref.star_altaz(ra, dec, lat, lon, YEAR)
    high = truth_alt > 30
    secz = 1 / np.sin(np.radians(truth_alt[high]))
    assert np.allclose(cube.airmass[:, 0][high], secz, rtol=3e-3)
    assert np.all(np.isinf(cube.airmass[:, 0][truth_alt < -0.1]))


def test_hour_angle_matches_astropy_apparent_sidereal_time(sky):
    from astropy import units as u
    from astropy.coordinates import TETE, SkyCoord
    from astropy.time import Time
    ra, dec = sky
    lat, lon, _ = ref.SITES["kitt_peak"]
    cube = vis.altaz(ra, dec, [lat], [lon], YEAR[:3])
    times = Time(YEAR[:3], format="unix")
    for k, t in enumerate(times):
        tete = SkyCoord(ra=ra * u.deg, dec=dec * u.deg).transform_to(TETE(obstime=t))
        lst = t.sidereal_time("apparent", longitude=lon * u.deg).hour
        truth = (lst - tete.ra.hour + 12) % 24 - 12
        assert np.abs(cube.hour_angle_h[:, 0, k] - truth).max() * 15 * 60 < 0.1  # arcmin of hour angle


def test_chunking_over_targets_and_float32_give_the_same_cube(sky):
    ra, dec = sky
    lat = np.array([-30.0, 45.0])
    lon = np.array([20.0, -100.0])
    full = vis.altaz(ra, dec, lat, lon, YEAR[:4])
    chunked = vis.altaz(ra, dec, lat, lon, YEAR[:4], chunk_targets=7, dtype=np.float32)
    assert chunked.altitude_deg.dtype == np.float32
    assert np.abs(full.altitude_deg - chunked.altitude_deg).max() < 1e-4
    per_site = vis.altaz(ra, dec, lat, lon, np.stack([YEAR[:4], YEAR[4:8]]))
    assert np.allclose(per_site.altitude_deg[:, 1], vis.altaz(ra, dec, lat[1:], lon[1:], YEAR[4:8]).altitude_deg[:, 0])


@pytest.mark.parametrize("site", ["paranal", "la_palma", "siding_spring", "tromso", "mauna_kea"])
def test_rise_transit_set_of_bright_stars_against_astropy(site):
    lat, lon, elev = ref.SITES[site]
    names = list(ref.STARS)
    ra = np.array([ref.STARS[n][0] for n in names])
    dec = np.array([ref.STARS[n][1] for n in names])
    after = START_2026 + 123.4 * 86400
    events = vis.rise_transit_set(ra, dec, [lat], [lon], after, refraction=False)
    grid = after + np.arange(0, 86400 * 1.01, 60.0)
    truth_alt, _ = ref.star_altaz(ra, dec, lat, lon, grid)
    for i, name in enumerate(names):
        rises = ref.crossing(grid, truth_alt[i], 0.0, rising=True)
        sets = ref.crossing(grid, truth_alt[i], 0.0, rising=False)
        if truth_alt[i].min() > 0:
            assert events.circumpolar[i, 0], name
        elif truth_alt[i].max() < 0:
            assert events.never_rises[i, 0], name
        else:
            assert events.rise[i, 0] == pytest.approx(rises[0], abs=10), name
            assert events.set[i, 0] == pytest.approx(sets[0], abs=10), name
        # At transit the star is at its highest: astropy's altitude a minute either side is lower.
        t = events.transit[i, 0]
        around, _ = ref.star_altaz(ra[i], dec[i], lat, lon, [t - 60, t, t + 60])
        assert around[0, 1] >= around[0, 0] and around[0, 1] >= around[0, 2], name


def test_rise_with_refraction_comes_earlier_than_geometric():
    ra, dec = ref.STARS["Sirius"]
    lat, lon, _ = ref.SITES["paranal"]
    geometric = vis.rise_transit_set([ra], [dec], [lat], [lon], START_2026, refraction=False)
    apparent = vis.rise_transit_set([ra], [dec], [lat], [lon], START_2026)
    assert 60 < geometric.rise[0, 0] - apparent.rise[0, 0] < 300
    assert apparent.set[0, 0] > geometric.set[0, 0]


@pytest.mark.parametrize("site", ["paranal", "equator_quito", "haute_provence", "tromso"])
def test_twilight_times_against_astropy(site):
    lat, lon, elev = ref.SITES[site]
    checked = 0
    for day in (15.0, 100.0, 260.0):
        start = START_2026 + day * 86400
        grid = start + np.arange(0, 2 * 86400 + 1, 90.0)
        truth = ref.sun_altitude(lat, lon, grid, elev)
        for twilight in ("civil", "nautical", "astronomical"):
            sun_limit = vis.twilight_sun_altitude(twilight)
            ours = vis.dark_intervals(lat, lon, start, start + 2 * 86400, sun_limit)[0]
            dusks = ref.crossing(grid, -truth, -sun_limit, rising=True)
            dawns = ref.crossing(grid, -truth, -sun_limit, rising=False)
            assert len([a for a, _ in ours if a > start]) == len(dusks)
            for (t0, t1) in ours:
                if t0 > start:
                    assert np.abs(dusks - t0).min() < 30
                    checked += 1
                if t1 < start + 2 * 86400:
                    assert np.abs(dawns - t1).min() < 30
                    checked += 1
            if truth.max() < sun_limit:
                assert ours == [(start, start + 2 * 86400)]
    assert checked >= (12 if site != "tromso" else 4)


def test_no_astronomical_night_in_the_arctic_summer():
    lat, lon, _ = ref.SITES["tromso"]
    midsummer = float(eph.to_unix(dt.datetime(2026, 6, 21, tzinfo=dt.UTC)))
    assert vis.night_containing(vis.Observatory(lat, lon, twilight="astronomical"), midsummer) is None
    night = vis.night_containing(vis.Observatory(*ref.SITES["paranal"][:2]), midsummer)
    assert night is not None and night[1] - night[0] > 9 * 3600


def test_night_containing_returns_the_current_night_or_the_next():
    lat, lon, _ = ref.SITES["paranal"]
    site = vis.Observatory(lat, lon, twilight="nautical")
    noon_local = START_2026 + (12 - lon / 15) * 3600  # Sun high: next night starts later
    start, end = vis.night_containing(site, noon_local)
    assert start > noon_local and end - start > 6 * 3600
    middle = 0.5 * (start + end)
    assert vis.night_containing(site, middle) == pytest.approx((start, end), abs=1)


def test_horizon_profile_interpolates_through_north():
    profile = vis.HorizonProfile.from_points({0: 10, 90: 30, 270: 20})
    assert profile.min_altitude(np.array([45.0, 315.0, 0.0, 359.0])) == pytest.approx([20.0, 15.0, 10.0, 10 + 10 / 90])
    assert profile.lowest_deg == 10
    site = vis.Observatory(30.0, 0.0, min_altitude_deg=15.0, horizon=profile)
    assert site.limit_altitude(np.array([0.0, 90.0])) == pytest.approx([15.0, 30.0])


@pytest.mark.parametrize("bad, message", [
    ({"azimuth_deg": (0.0, 400.0), "altitude_deg": (1.0, 2.0)}, "azimuths"),
    ({"azimuth_deg": (0.0, 90.0), "altitude_deg": (1.0,)}, "matching"),
    ({"azimuth_deg": (10.0,), "altitude_deg": (95.0,)}, "altitudes"),
])
def test_bad_horizon_profiles_are_refused_with_a_reason(bad, message):
    with pytest.raises(vis.VisibilityError, match=message):
        vis.HorizonProfile(**bad)


@pytest.mark.parametrize("kwargs, message", [
    ({"latitude_deg": 95.0, "longitude_deg": 0.0}, "latitude"),
    ({"latitude_deg": 10.0, "longitude_deg": 0.0, "ha_limits_hours": (3.0, -3.0)}, "hour-angle"),
    ({"latitude_deg": 10.0, "longitude_deg": 0.0, "twilight": "dusk"}, "twilight"),
])
def test_bad_site_limits_are_refused_with_a_reason(kwargs, message):
    with pytest.raises(vis.VisibilityError, match=message):
        vis.Observatory(**kwargs)
