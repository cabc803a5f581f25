"""Cone search and cross-match: one function per purpose, one implementation per backend.

On PostgreSQL the Q3C extension answers through its index (``q3c_radial_query``,
``q3c_join``). On SQLite, the embedded default, the same functions compute the exact
great-circle distance after a cheap prefilter (a declination band, and an RA window that
knows about the 0/360 wrap and widens to every RA when the cone holds a pole). Both give the
same answers; tests/targets/test_sky.py holds them to a brute-force truth.

All angles are degrees, positions ICRS/J2000.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.models import BooleanField, F, FloatField, Func, Q, QuerySet, Value

from network.api_errors import ClientInputError

SQLITE_SEPARATION_FUNCTION = "datas_separation_deg"
# Float slack in the prefilter so that rounding never drops a point the exact test keeps.
PREFILTER_MARGIN_DEG = 1e-7


class InvalidSkyPosition(ClientInputError):
    """A position or radius outside its valid range."""


@dataclass(frozen=True)
class SkyMatch:
    """The nearest catalogue row to one input position, within the match radius."""

    source_index: int
    object_id: int
    separation_deg: float


def angular_separation_deg(ra1, dec1, ra2, dec2):
    """Great-circle distance between two positions (Vincenty's formula, exact at all scales).

    Parameters
    ----------
    ra1, dec1, ra2, dec2 : float or array_like
        Positions in degrees; arrays broadcast.

    Returns
    -------
    float or numpy.ndarray
        Separation in degrees, in [0, 180].
    """
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    dlon = lon2 - lon1
    sin_lat1, cos_lat1 = np.sin(lat1), np.cos(lat1)
    sin_lat2, cos_lat2 = np.sin(lat2), np.cos(lat2)
    num1 = cos_lat2 * np.sin(dlon)
    num2 = cos_lat1 * sin_lat2 - sin_lat1 * cos_lat2 * np.cos(dlon)
    denominator = sin_lat1 * sin_lat2 + cos_lat1 * cos_lat2 * np.cos(dlon)
    result = np.degrees(np.arctan2(np.hypot(num1, num2), denominator))
    return float(result) if np.ndim(result) == 0 else result


def _sqlite_separation(ra1, dec1, ra2, dec2):
    if None in (ra1, dec1, ra2, dec2):
        return None
    return angular_separation_deg(ra1, dec1, ra2, dec2)


def _register_on_sqlite(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_SEPARATION_FUNCTION, 4, _sqlite_separation,
                                              deterministic=True)


def register_sqlite_functions() -> None:
    """Teach every new SQLite connection the exact separation function (called at app start)."""
    connection_created.connect(_register_on_sqlite, dispatch_uid="datas-sqlite-separation")
    for connection in connections.all(initialized_only=True):
        if connection.vendor == "sqlite" and connection.connection is not None:
            _register_on_sqlite(None, connection)


def check_position(ra_deg: float, dec_deg: float, radius_deg: float | None = None) -> tuple[float, float]:
    """Validate a position (and radius); return it with RA folded into [0, 360)."""
    try:
        ra, dec = float(ra_deg), float(dec_deg)
    except (TypeError, ValueError) as exc:
        raise InvalidSkyPosition("ra and dec must be numbers (degrees)") from exc
    if not (math.isfinite(ra) and math.isfinite(dec)):
        raise InvalidSkyPosition("ra and dec must be finite numbers (degrees)")
    if not -90 <= dec <= 90:
        raise InvalidSkyPosition(f"dec {dec} is outside [-90, 90] degrees")
    if radius_deg is not None and not (0 < float(radius_deg) <= 180):
        raise InvalidSkyPosition(f"radius {radius_deg} must be in (0, 180] degrees")
    return ra % 360.0, dec


class Q3CRadialQuery(Func):
    function = "q3c_radial_query"
    output_field = BooleanField()


class Q3CDistance(Func):
    function = "q3c_dist"
    output_field = FloatField()


class ExactSeparation(Func):
    function = SQLITE_SEPARATION_FUNCTION
    output_field = FloatField()


def ra_window(ra_deg: float, dec_deg: float, radius_deg: float) -> list[tuple[float, float]] | None:
    """RA intervals (within [0, 360]) that hold every point of a cone; None when all RA do.

    The half-width of a small circle in RA is ``asin(sin r / cos dec)``; it covers every RA
    once the circle reaches a pole.
    """
    if abs(dec_deg) + radius_deg >= 90 - PREFILTER_MARGIN_DEG:
        return None
    half_width = math.degrees(math.asin(min(1.0, math.sin(math.radians(radius_deg))
                                            / math.cos(math.radians(dec_deg))))) + PREFILTER_MARGIN_DEG
    if half_width >= 180:
        return None
    low, high = ra_deg - half_width, ra_deg + half_width
    if low < 0:
        return [(low + 360, 360.0), (0.0, high)]
    if high > 360:
        return [(low, 360.0), (0.0, high - 360)]
    return [(low, high)]


def _prefilter(ra_field: str, dec_field: str, ra: float, dec: float, radius: float) -> Q:
    band = Q(**{f"{dec_field}__gte": dec - radius - PREFILTER_MARGIN_DEG,
                f"{dec_field}__lte": dec + radius + PREFILTER_MARGIN_DEG})
    window = ra_window(ra, dec, radius)
    if window is None:
        return band
    ra_clause = Q()
    for low, high in window:
        ra_clause |= Q(**{f"{ra_field}__gte": low, f"{ra_field}__lte": high})
    return band & ra_clause


def cone_search(queryset: QuerySet, ra_deg: float, dec_deg: float, radius_deg: float, *,
                ra_field: str = "ra_deg", dec_field: str = "dec_deg") -> QuerySet:
    """Rows of ``queryset`` within ``radius_deg`` of a position, nearest first.

    Parameters
    ----------
    queryset : QuerySet
        Rows with RA/Dec columns in degrees (already scoped to a tenant).
    ra_deg, dec_deg : float
        Centre of the cone, degrees.
    radius_deg : float
        Cone radius, degrees, in (0, 180].
    ra_field, dec_field : str
        Names of the model's RA and Dec fields.

    Returns
    -------
    QuerySet
        Annotated with ``separation_deg`` and ordered by it.
    """
    ra, dec = check_position(ra_deg, dec_deg, radius_deg)
    radius = float(radius_deg)
    if queryset.db and connections[queryset.db].vendor == "postgresql":
        inside = Q3CRadialQuery(F(ra_field), F(dec_field), Value(ra), Value(dec), Value(radius))
        distance = Q3CDistance(F(ra_field), F(dec_field), Value(ra), Value(dec))
        return queryset.filter(inside).annotate(separation_deg=distance).order_by("separation_deg")
    distance = ExactSeparation(F(ra_field), F(dec_field), Value(ra), Value(dec))
    return (queryset.filter(_prefilter(ra_field, dec_field, ra, dec, radius))
            .annotate(separation_deg=distance)
            .filter(separation_deg__lte=radius)
            .order_by("separation_deg"))


def cross_match(ra_deg, dec_deg, queryset: QuerySet, radius_deg: float, *,
                ra_field: str = "ra_deg", dec_field: str = "dec_deg") -> list[SkyMatch]:
    """For each input position, the nearest row of ``queryset`` within ``radius_deg``.

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        Input positions in degrees (e.g. sources measured on a frame, alert positions).
    queryset : QuerySet
        The catalogue to match against, already scoped to a tenant.
    radius_deg : float
        Match radius in degrees.

    Returns
    -------
    list of SkyMatch
        One entry per input position that has a match, in input order; unmatched inputs are
        absent.
    """
    ras = np.atleast_1d(np.asarray(ra_deg, dtype=float)) % 360.0
    decs = np.atleast_1d(np.asarray(dec_deg, dtype=float))
    if ras.shape != decs.shape:
        raise InvalidSkyPosition("ra and dec arrays must have the same length")
    if not (np.all(np.isfinite(ras)) and np.all(np.isfinite(decs)) and np.all(np.abs(decs) <= 90)):
        raise InvalidSkyPosition("every dec must be finite and in [-90, 90] degrees")
    if not 0 < radius_deg <= 180:
        raise InvalidSkyPosition(f"radius {radius_deg} must be in (0, 180] degrees")
    if ras.size == 0:
        return []
    if queryset.db and connections[queryset.db].vendor == "postgresql":
        return _cross_match_q3c(ras, decs, queryset, float(radius_deg), ra_field, dec_field)
    return _cross_match_exact(ras, decs, queryset, float(radius_deg), ra_field, dec_field)


def _cross_match_q3c(ras, decs, queryset, radius, ra_field, dec_field) -> list[SkyMatch]:
    inner_sql, inner_params = queryset.order_by().values_list("pk", ra_field, dec_field).query.sql_with_params()
    sql = (
        "SELECT s.idx, m.id, m.sep FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS s(ra, dec, idx) "
        "CROSS JOIN LATERAL (SELECT c.id, q3c_dist(s.ra, s.dec, c.ra, c.dec) AS sep "
        f"FROM ({inner_sql}) AS c(id, ra, dec) "
        "WHERE q3c_join(s.ra, s.dec, c.ra, c.dec, %s) ORDER BY sep, c.id LIMIT 1) AS m ORDER BY s.idx"
    )
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, [ras.tolist(), decs.tolist(), *inner_params, radius])
        rows = cursor.fetchall()
    return [SkyMatch(int(idx) - 1, int(pk), float(sep)) for idx, pk, sep in rows]


def _unit_vectors(ras: np.ndarray, decs: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ras), np.radians(decs)
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def _cross_match_exact(ras, decs, queryset, radius, ra_field, dec_field) -> list[SkyMatch]:
    from scipy.spatial import cKDTree

    band = Q(**{f"{dec_field}__gte": decs.min() - radius - PREFILTER_MARGIN_DEG,
                f"{dec_field}__lte": decs.max() + radius + PREFILTER_MARGIN_DEG})
    rows = np.array(list(queryset.filter(band).values_list("pk", ra_field, dec_field)), dtype=float)
    if rows.size == 0:
        return []
    tree = cKDTree(_unit_vectors(rows[:, 1], rows[:, 2]))
    # Chord length grows monotonically with angle, so the k-d tree's Euclidean bound is exact.
    chord = 2 * math.sin(math.radians(radius) / 2) * (1 + 1e-12)
    _, nearest = tree.query(_unit_vectors(ras, decs), k=1, distance_upper_bound=chord)
    matches = []
    for index, row in enumerate(nearest):
        if row >= len(rows):
            continue
        separation = angular_separation_deg(ras[index], decs[index], rows[row, 1], rows[row, 2])
        if separation <= radius:
            matches.append(SkyMatch(index, int(rows[row, 0]), float(separation)))
    return matches
