"""Sites and targets with known geometry for the scheduler tests."""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from datas_pipeline.sky import ephemeris as eph

from scheduling import SiteSpec, TargetSpec

# Local midnight at longitude 0 near the March equinox: a long dark night at mid latitudes.
NOW = float(eph.to_unix(dt.datetime(2026, 3, 20, 0, 0, tzinfo=dt.UTC)))


def site(site_id: Any = 1, lat: float = 30.0, lon: float = 0.0, **kwargs: Any) -> SiteSpec:
    """A clear, fresh, active site at (lat, lon)."""
    defaults: dict[str, Any] = dict(name=f"site-{site_id}", latitude_deg=lat, longitude_deg=lon, filters=("B", "V", "R"),
                                    weather="clear", weather_reported_at=NOW - 60, min_altitude_deg=20.0)
    defaults.update(kwargs)
    return SiteSpec(id=site_id, **defaults)


def sky_position(lat: float, lon: float, hour_angle_h: float, dec: float, when: float = NOW) -> tuple[float, float]:
    """ICRS (ra, dec) of a target at a given hour angle from (lat, lon) at ``when`` (J2000 ~ date here)."""
    lst = float(eph.local_sidereal_deg(when, lon))
    # Precession since J2000 is ~0.36 deg; targets are chosen well inside limits, so J2000 ~ date.
    return float(np.mod(lst - 15.0 * hour_angle_h, 360.0)), dec


def target(target_id: Any, ra: float, dec: float, **kwargs: Any) -> TargetSpec:
    """A target with sensible defaults (priority 1, V, 60 s)."""
    defaults: dict[str, Any] = dict(name=f"T{target_id}", filters=("V",), exposure_sec=60.0)
    defaults.update(kwargs)
    return TargetSpec(id=target_id, ra_deg=ra, dec_deg=dec, **defaults)


def random_network(n_targets: int, n_sites: int, seed: int, **site_kwargs: Any) -> tuple[list[TargetSpec], list[SiteSpec]]:
    """A seeded network of night-side sites and targets all over the sky."""
    rng = np.random.default_rng(seed)
    sites = [site(j, lat=float(rng.uniform(-40, 55)), lon=float(rng.uniform(-60, 60)),
                  reliability=float(rng.uniform(0.7, 1.0)), limiting_mag=float(rng.uniform(14, 18)), **site_kwargs)
             for j in range(n_sites)]
    targets = [target(i, float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-1, 1)))),
                      priority=float(rng.integers(1, 10)), magnitude=float(rng.uniform(8, 17)),
                      recent_sites={int(rng.integers(0, n_sites)): 2} if rng.random() < 0.3 else {})
               for i in range(n_targets)]
    return targets, sites
