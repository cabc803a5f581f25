"""Where targets are in the sky, for many targets, sites and times at once.

Pure numpy (no Django): altitude, azimuth, hour angle and Kasten-Young airmass for
N targets x M sites x T times as matrix products of unit vectors, the Sun and twilight, the
Moon, and each site's limits (minimum altitude, horizon profile, hour-angle limits, moon
separation). From those: dark intervals, rise/transit/set times and, per target and site,
the observable windows and the best time.

Conventions: times are POSIX seconds (UTC); angles in degrees; hour angles in hours, positive
west of the meridian; azimuth from north through east; longitudes east-positive. Target
coordinates are ICRS/J2000. Altitudes are geometric unless the name says ``apparent``
(refracted, what a horizon profile or a minimum altitude is measured in).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from datas_pipeline.sky import ephemeris as eph
from datas_pipeline.sky.ephemeris import DEG

TWILIGHT_SUN_ALTITUDE = {"civil": -6.0, "nautical": -12.0, "astronomical": -18.0}
# Apparent altitude of the upper limb at sunrise/sunset: 16' semi-diameter + 34' refraction.
SUNRISE_ALTITUDE = -0.8333
# Star rise/set altitude (refraction at the horizon), as the almanacs use.
STAR_RISE_ALTITUDE = -0.5667
# Times farther apart than this get their own precession/aberration epoch (aberration moves
# stars by up to 0.35''/day).
EPOCH_BUCKET_S = 5 * 86400.0


class VisibilityError(ValueError):
    """A site limit, horizon profile or time range that cannot be used as given."""


def twilight_sun_altitude(twilight: str) -> float:
    """Sun altitude (degrees) that ends a twilight: ``civil``, ``nautical`` or ``astronomical``."""
    try:
        return TWILIGHT_SUN_ALTITUDE[twilight]
    except KeyError:
        choices = ", ".join(TWILIGHT_SUN_ALTITUDE)
        raise VisibilityError(f"unknown twilight {twilight!r}; use one of {choices}") from None


@dataclass(frozen=True)
class HorizonProfile:
    """Minimum apparent altitude as a function of azimuth (trees, buildings, a dome slit).

    Linear between the given points, wrapping through north. A single point is a flat horizon.
    """

    azimuth_deg: tuple[float, ...]
    altitude_deg: tuple[float, ...]

    def __post_init__(self) -> None:
        az, alt = np.asarray(self.azimuth_deg, float), np.asarray(self.altitude_deg, float)
        if az.ndim != 1 or az.shape != alt.shape or az.size == 0:
            raise VisibilityError("a horizon profile needs matching, non-empty azimuth and altitude lists")
        if np.any((az < 0) | (az >= 360)) or not np.all(np.isfinite(az)):
            raise VisibilityError("horizon azimuths must lie in [0, 360) degrees")
        if len(set(az.tolist())) != az.size:
            raise VisibilityError("horizon azimuths must be distinct")
        if np.any((alt < -5) | (alt > 90)) or not np.all(np.isfinite(alt)):
            raise VisibilityError("horizon altitudes must lie in [-5, 90] degrees")

    @classmethod
    def from_points(cls, points: Sequence[Sequence[float]] | dict[float, float]) -> HorizonProfile:
        """Build from ``[(azimuth, altitude), ...]`` or ``{azimuth: altitude}`` (degrees)."""
        pairs = sorted((float(a), float(h)) for a, h in (points.items() if isinstance(points, dict) else points))
        if not pairs:
            raise VisibilityError("a horizon profile needs at least one (azimuth, altitude) point")
        return cls(tuple(p[0] % 360.0 for p in pairs), tuple(p[1] for p in pairs))

    @property
    def lowest_deg(self) -> float:
        """The lowest altitude anywhere on the profile (degrees)."""
        return float(min(self.altitude_deg))

    def min_altitude(self, azimuth_deg: np.ndarray) -> np.ndarray:
        """Minimum apparent altitude (degrees) at the given azimuths."""
        az = np.asarray(azimuth_deg, dtype=np.float64)
        if len(self.azimuth_deg) == 1:
            return np.full(az.shape, self.altitude_deg[0])
        order = np.argsort(self.azimuth_deg)
        return np.interp(az, np.asarray(self.azimuth_deg)[order], np.asarray(self.altitude_deg)[order],
                         period=360.0)


@dataclass(frozen=True)
class Observatory:
    """A site's position and its pointing limits.

    Attributes
    ----------
    latitude_deg, longitude_deg : float
        Geodetic latitude and east-positive longitude (degrees).
    elevation_m : float
        Height above the WGS84 ellipsoid (metres).
    min_altitude_deg : float
        Lowest apparent altitude the site observes at, anywhere (degrees).
    horizon : HorizonProfile or None
        Local obstructions; the effective limit is the higher of the two.
    ha_limits_hours : (float, float) or None
        Allowed hour angle (east limit, west limit), e.g. ``(-4.5, 4.5)`` for a fork mount.
    twilight : str
        Darkness the site needs: ``civil``, ``nautical`` or ``astronomical``.
    max_sun_altitude_deg : float or None
        The Sun's highest allowed altitude (degrees) when given as a number (the site agent's
        ``safety.max_sun_altitude_deg``); overrides ``twilight``.
    min_moon_separation_deg : float
        Closest approach to the Moon allowed while the Moon is up (degrees).
    pressure_hpa, temperature_c : float
        For refraction; ``pressure_hpa=None`` takes the standard atmosphere at the elevation.
    """

    latitude_deg: float
    longitude_deg: float
    elevation_m: float = 0.0
    min_altitude_deg: float = 0.0
    horizon: HorizonProfile | None = None
    ha_limits_hours: tuple[float, float] | None = None
    twilight: str = "astronomical"
    min_moon_separation_deg: float = 0.0
    pressure_hpa: float | None = None
    temperature_c: float = 10.0
    max_sun_altitude_deg: float | None = None

    def __post_init__(self) -> None:
        if not -90.0 <= self.latitude_deg <= 90.0:
            raise VisibilityError(f"latitude {self.latitude_deg} is outside [-90, 90] degrees")
        if not -180.0 <= self.longitude_deg <= 360.0:
            raise VisibilityError(f"longitude {self.longitude_deg} is outside [-180, 360] degrees")
        if not -10.0 <= self.min_altitude_deg < 90.0:
            raise VisibilityError(f"minimum altitude {self.min_altitude_deg} is outside [-10, 90) degrees")
        if self.ha_limits_hours is not None:
            east, west = self.ha_limits_hours
            if not -12.0 <= east < west <= 12.0:
                raise VisibilityError(
                    f"hour-angle limits {self.ha_limits_hours} must satisfy -12 <= east < west <= 12 hours")
        twilight_sun_altitude(self.twilight)
        if self.max_sun_altitude_deg is not None and not -90.0 <= self.max_sun_altitude_deg <= 90.0:
            raise VisibilityError(f"Sun altitude limit {self.max_sun_altitude_deg} is outside [-90, 90] degrees")

    @property
    def sun_limit_deg(self) -> float:
        """The Sun's highest allowed geometric altitude (degrees): the twilight's, or the number given."""
        if self.max_sun_altitude_deg is not None:
            return float(self.max_sun_altitude_deg)
        return twilight_sun_altitude(self.twilight)

    @property
    def pressure(self) -> float:
        """Pressure used for refraction (hPa)."""
        if self.pressure_hpa is not None:
            return self.pressure_hpa
        return float(eph.standard_pressure_hpa(self.elevation_m))

    @property
    def lowest_altitude_deg(self) -> float:
        """The lowest apparent altitude this site could observe at in any direction (degrees)."""
        profile = self.horizon.lowest_deg if self.horizon is not None else -90.0
        return max(self.min_altitude_deg, profile)

    def limit_altitude(self, azimuth_deg: np.ndarray) -> np.ndarray:
        """Minimum apparent altitude (degrees) at the given azimuths."""
        az = np.asarray(azimuth_deg, dtype=np.float64)
        if self.horizon is None:
            return np.full(az.shape, self.min_altitude_deg)
        return np.maximum(self.horizon.min_altitude(az), self.min_altitude_deg)

    def refraction(self, true_altitude_deg: np.ndarray) -> np.ndarray:
        """Refraction (degrees) at this site's pressure and temperature."""
        return eph.refraction_deg(true_altitude_deg, self.pressure, self.temperature_c)


@dataclass(frozen=True)
class AltAzCube:
    """Geometric altitude and azimuth, hour angle and airmass, each shaped (targets, sites, times)."""

    altitude_deg: np.ndarray
    azimuth_deg: np.ndarray
    hour_angle_h: np.ndarray
    airmass: np.ndarray
    apparent_altitude_deg: np.ndarray


def site_frames(latitude_deg: np.ndarray, longitude_deg: np.ndarray, times: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Zenith, north and east unit vectors (true equator of date) and local sidereal time.

    ``latitude_deg``/``longitude_deg`` shaped (M,) and ``times`` (T,) or (M, T) give vectors
    shaped (M, T, 3) and a sidereal time in degrees shaped (M, T).
    """
    lat = np.atleast_1d(np.asarray(latitude_deg, dtype=np.float64))[:, None] * DEG
    lon = np.atleast_1d(np.asarray(longitude_deg, dtype=np.float64))[:, None]
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    times = np.broadcast_to(times, (lat.shape[0], times.shape[-1]))
    lst = eph.local_sidereal_deg(times, lon)
    cl, sl = np.cos(lst * DEG), np.sin(lst * DEG)
    cp, sp = np.broadcast_to(np.cos(lat), cl.shape), np.broadcast_to(np.sin(lat), cl.shape)
    zenith = np.stack([cp * cl, cp * sl, sp], axis=-1)
    north = np.stack([-sp * cl, -sp * sl, cp], axis=-1)
    east = np.stack([-sl, cl, np.zeros_like(cl)], axis=-1)
    return zenith, north, east, lst


def _epoch_buckets(times: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Split flattened times into groups short enough to share one apparent-place epoch."""
    flat = times.ravel()
    if flat.size == 0:
        return []
    if np.ptp(flat) <= EPOCH_BUCKET_S:
        return [(np.arange(flat.size), float(np.median(flat)))]
    bucket = np.floor((flat - flat.min()) / EPOCH_BUCKET_S).astype(np.int64)
    groups = []
    for b in np.unique(bucket):
        idx = np.flatnonzero(bucket == b)
        groups.append((idx, float(np.median(flat[idx]))))
    return groups


def altaz(ra_deg: np.ndarray, dec_deg: np.ndarray, latitude_deg: np.ndarray, longitude_deg: np.ndarray,
          times: np.ndarray, *, pressure_hpa: np.ndarray | float = 0.0, temperature_c: float = 10.0,
          chunk_targets: int = 2048, dtype: type = np.float64) -> AltAzCube:
    """Altitude, azimuth, hour angle and airmass of N targets from M sites at T times.

    Parameters
    ----------
    ra_deg, dec_deg : array_like, shape (N,)
        ICRS/J2000 coordinates (degrees).
    latitude_deg, longitude_deg : array_like, shape (M,)
        Geodetic latitude and east longitude of the sites (degrees).
    times : array_like, shape (T,) or (M, T)
        POSIX seconds (UTC), shared by all sites or one row per site.
    pressure_hpa : float or array_like, shape (M,)
        For the apparent altitude and the airmass; 0 disables refraction.
    chunk_targets : int
        Targets per block: bounds the temporary memory to about 40 bytes x chunk x M x T.
    dtype : numpy dtype
        Of the returned arrays (``np.float32`` halves the memory; the maths stays float64).

    Returns
    -------
    AltAzCube
        Arrays shaped (N, M, T).
    """
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    lat = np.atleast_1d(np.asarray(latitude_deg, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(longitude_deg, dtype=np.float64))
    if ra.shape != dec.shape or lat.shape != lon.shape:
        raise VisibilityError("ra/dec and latitude/longitude must come in matching pairs")
    times = np.atleast_1d(eph.to_unix(times))
    zenith, north, east, lst = site_frames(lat, lon, times)
    n, m, t = ra.size, lat.size, zenith.shape[1]
    zenith, north, east = (v.reshape(m * t, 3) for v in (zenith, north, east))
    lst = lst.reshape(m * t)
    shape = (n, m, t)
    out = {name: np.empty(shape, dtype=dtype) for name in ("alt", "az", "ha", "app", "airmass")}
    pressure = np.broadcast_to(np.asarray(pressure_hpa, dtype=np.float64), (m,))
    pressure = np.repeat(pressure, t)
    all_times = np.broadcast_to(times, (m, t))
    for idx, epoch in _epoch_buckets(all_times):
        for lo in range(0, n, chunk_targets):
            hi = min(lo + chunk_targets, n)
            p = eph.apparent_vectors(ra[lo:hi], dec[lo:hi], epoch)
            sin_h = p @ zenith[idx].T
            x_north, x_east = p @ north[idx].T, p @ east[idx].T
            alt = np.arctan2(sin_h, np.hypot(x_north, x_east)) / DEG
            az = np.mod(np.arctan2(x_east, x_north) / DEG, 360.0)
            ra_date = np.arctan2(p[:, 1], p[:, 0]) / DEG
            ha = np.mod(lst[idx][None, :] - ra_date[:, None] + 180.0, 360.0) - 180.0
            app = alt + eph.refraction_deg(alt, pressure[idx][None, :], temperature_c) * (pressure[idx] > 0)
            for name, value in (("alt", alt), ("az", az), ("ha", ha / 15.0), ("app", app),
                                ("airmass", eph.kasten_young_airmass(app))):
                out[name].reshape(n, m * t)[lo:hi, idx] = value
    return AltAzCube(out["alt"], out["az"], out["ha"], out["airmass"], out["app"])


def _body_altaz(vectors: np.ndarray, latitude_deg: np.ndarray, longitude_deg: np.ndarray,
                times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    zenith, north, east, _ = site_frames(latitude_deg, longitude_deg, times)
    sin_h = np.sum(vectors * zenith, axis=-1)
    x_n, x_e = np.sum(vectors * north, axis=-1), np.sum(vectors * east, axis=-1)
    return np.arctan2(sin_h, np.hypot(x_n, x_e)) / DEG, np.mod(np.arctan2(x_e, x_n) / DEG, 360.0)


def sun_altaz(latitude_deg: np.ndarray, longitude_deg: np.ndarray, times: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Geometric altitude and azimuth of the Sun's centre (degrees), shaped (M, T)."""
    lat = np.atleast_1d(np.asarray(latitude_deg, dtype=np.float64))
    times = np.broadcast_to(np.atleast_1d(eph.to_unix(times)), (lat.size, np.shape(np.atleast_1d(times))[-1]))
    return _body_altaz(eph.sun_vectors(times), lat, longitude_deg, times)


def moon_altaz(latitude_deg: np.ndarray, longitude_deg: np.ndarray, times: np.ndarray,
               elevation_m: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Topocentric geometric altitude, azimuth (degrees) and unit vectors of the Moon, shaped (M, T[, 3])."""
    lat = np.atleast_1d(np.asarray(latitude_deg, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(longitude_deg, dtype=np.float64))
    times = np.broadcast_to(np.atleast_1d(eph.to_unix(times)), (lat.size, np.shape(np.atleast_1d(times))[-1]))
    elev = np.broadcast_to(np.asarray(elevation_m, dtype=np.float64), lat.shape)[:, None]
    vectors, _ = eph.moon_topocentric(times, lat[:, None], lon[:, None], elev)
    alt, az = _body_altaz(vectors, lat, lon, times)
    return alt, az, vectors


def moon_separation_deg(ra_deg: np.ndarray, dec_deg: np.ndarray, moon_vectors: np.ndarray,
                        epoch_unix: float) -> np.ndarray:
    """Angular distance (degrees) of targets (N,) from Moon vectors (..., 3): shape (N, ...)."""
    p = eph.apparent_vectors(ra_deg, dec_deg, epoch_unix)
    flat = moon_vectors.reshape(-1, 3)
    cos_sep = np.clip(p @ flat.T, -1.0, 1.0)
    return (np.arccos(cos_sep) / DEG).reshape((p.shape[0], *moon_vectors.shape[:-1]))


def refine_crossings(func: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray,
                     iterations: int = 24) -> np.ndarray:
    """Bisect ``func`` (vectorised over the brackets) to its sign change inside ``[lo, hi]``."""
    lo, hi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
    f_lo = func(lo)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        f_mid = func(mid)
        same = np.sign(f_mid) == np.sign(f_lo)
        lo, f_lo = np.where(same, mid, lo), np.where(same, f_mid, f_lo)
        hi = np.where(same, hi, mid)
    return 0.5 * (lo + hi)


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contiguous True runs along the last axis: (row index, first index, one-past-last index)."""
    mask = np.asarray(mask, dtype=bool)
    rows = mask.reshape(-1, mask.shape[-1])
    padded = np.zeros((rows.shape[0], rows.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = rows
    edges = np.diff(padded, axis=1)
    start_r, start_c = np.nonzero(edges == 1)
    end_r, end_c = np.nonzero(edges == -1)
    return start_r, start_c, end_c


def dark_intervals(latitude_deg: np.ndarray, longitude_deg: np.ndarray, start: float, end: float,
                   sun_altitude_deg: float | np.ndarray = -18.0, step_s: float = 600.0
                   ) -> list[list[tuple[float, float]]]:
    """Intervals in ``[start, end]`` when the Sun's centre is below an altitude, per site.

    Edges are bisected to well under a second. Twilight altitudes are geometric (no
    refraction), as the definitions of civil, nautical and astronomical twilight are.

    Returns
    -------
    list of list of (float, float)
        For each site, (start, end) POSIX-second pairs in time order.
    """
    lat = np.atleast_1d(np.asarray(latitude_deg, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(longitude_deg, dtype=np.float64))
    start, end = float(eph.to_unix(start)), float(eph.to_unix(end))
    if not end > start:
        raise VisibilityError(f"the time range must end after it starts ({start} >= {end})")
    limit = np.broadcast_to(np.asarray(sun_altitude_deg, dtype=np.float64), lat.shape)
    grid = np.append(np.arange(start, end, step_s), end)
    margin = limit[:, None] - sun_altaz(lat, lon, grid)[0]
    dark = margin > 0
    site_idx, first, last = runs(dark)
    edge_site, edge_lo = [], []
    for s, a, b in zip(site_idx, first, last, strict=True):
        if a > 0:
            edge_site.append(s)
            edge_lo.append(a - 1)
        if b < grid.size:
            edge_site.append(s)
            edge_lo.append(b - 1)
    refined: dict[tuple[int, int], float] = {}
    if edge_site:
        es, el = np.asarray(edge_site), np.asarray(edge_lo)

        def sun_margin(t: np.ndarray) -> np.ndarray:
            return limit[es] - _body_altaz(eph.sun_vectors(t[:, None]), lat[es], lon[es], t[:, None])[0][:, 0]

        for s, i, t in zip(es, el, refine_crossings(sun_margin, grid[el], grid[el + 1]), strict=True):
            refined[(int(s), int(i))] = float(t)
    out: list[list[tuple[float, float]]] = [[] for _ in range(lat.size)]
    for s, a, b in zip(site_idx, first, last, strict=True):
        t0 = grid[a] if a == 0 else refined[(int(s), int(a - 1))]
        t1 = grid[-1] if b == grid.size else refined[(int(s), int(b - 1))]
        out[int(s)].append((float(t0), float(t1)))
    return out


def night_containing(observatory: Observatory, when: float, horizon_s: float = 86400.0
                     ) -> tuple[float, float] | None:
    """The dark interval (per the site's twilight) containing ``when`` or the next one to start.

    Looks ``horizon_s`` ahead; a polar night is cut there. ``None`` when it never gets dark.
    """
    when = float(eph.to_unix(when))
    sun_limit = observatory.sun_limit_deg
    found = dark_intervals(observatory.latitude_deg, observatory.longitude_deg, when - 43200.0,
                           when + horizon_s, sun_limit)[0]
    for t0, t1 in found:
        if t1 > when:
            return t0, t1
    return None


def bennett_refraction_deg(apparent_altitude_deg: np.ndarray | float) -> np.ndarray:
    """Refraction (degrees) at an apparent altitude (Bennett 1982), standard conditions."""
    h = np.maximum(np.asarray(apparent_altitude_deg, dtype=np.float64), -1.0)
    return 1.0 / np.tan((h + 7.31 / (h + 4.4)) * DEG) / 60.0


@dataclass(frozen=True)
class RiseSet:
    """Next rise, transit and set after a time (POSIX seconds), shaped (targets, sites).

    ``rise``/``set`` are NaN when the target never crosses the altitude that day: check
    ``circumpolar`` (always above) and ``never_rises`` (always below).
    """

    rise: np.ndarray
    transit: np.ndarray
    set: np.ndarray
    circumpolar: np.ndarray
    never_rises: np.ndarray


def rise_transit_set(ra_deg: np.ndarray, dec_deg: np.ndarray, latitude_deg: np.ndarray,
                     longitude_deg: np.ndarray, after: float, altitude_deg: float = 0.0,
                     refraction: bool = True) -> RiseSet:
    """Closed-form next rise, transit and set of fixed stars (no grid, no iteration).

    Parameters
    ----------
    ra_deg, dec_deg : array_like, shape (N,)
        ICRS/J2000 coordinates (degrees).
    latitude_deg, longitude_deg : array_like, shape (M,)
        Sites (degrees, east longitude).
    after : float
        Events strictly after this POSIX time (UTC) are returned.
    altitude_deg : float
        The apparent altitude that counts as rising (0 = the mathematical horizon).
    refraction : bool
        Lower the geometric threshold by standard refraction at ``altitude_deg`` (34' at 0).
    """
    after = float(eph.to_unix(after))
    p = eph.apparent_vectors(ra_deg, dec_deg, after)
    ra_date, dec_date = eph.vectors_to_radec(p)
    lat = np.atleast_1d(np.asarray(latitude_deg, dtype=np.float64))[None, :] * DEG
    lst = eph.local_sidereal_deg(after, np.atleast_1d(np.asarray(longitude_deg, dtype=np.float64)))
    threshold = altitude_deg - (float(bennett_refraction_deg(altitude_deg)) if refraction else 0.0)
    dec = dec_date[:, None] * DEG
    with np.errstate(divide="ignore", invalid="ignore"):
        cos_h0 = (np.sin(threshold * DEG) - np.sin(lat) * np.sin(dec)) / (np.cos(lat) * np.cos(dec))
    half_arc = np.arccos(np.clip(cos_h0, -1.0, 1.0)) / DEG
    hour_angle = lst[None, :] - ra_date[:, None]
    deg_per_s = 360.98564736629 / 86400.0

    def next_time(target_hour_angle: np.ndarray) -> np.ndarray:
        wait = np.mod(target_hour_angle - hour_angle, 360.0)
        return after + np.where(wait == 0.0, 360.0, wait) / deg_per_s

    circumpolar, never = cos_h0 <= -1.0, cos_h0 >= 1.0
    crosses = ~(circumpolar | never)
    rise = np.where(crosses, next_time(-half_arc), np.nan)
    set_ = np.where(crosses, next_time(half_arc), np.nan)
    return RiseSet(rise, next_time(np.zeros_like(half_arc)), set_, circumpolar, never)
