"""Cone search and cross-match against brute force, at both poles and across RA 0/360.

These run on PostgreSQL (Q3C) in the first pass and on SQLite (exact fallback) in the second.
"""
import numpy as np
import pytest
from django.db import connection

from targets.models import Target, name_key
from targets.sky import InvalidSkyPosition, angular_separation_deg, cone_search, cross_match, ra_window
from tests.network.factories import make_network

pytestmark = pytest.mark.django_db

# Cones chosen where naive box searches fail: across the RA wrap, over each pole, near a pole
# without containing it, and one large enough to hold a pole and the wrap at once.
CONES = [
    (0.05, 12.0, 1.0),
    (359.95, -33.0, 0.7),
    (180.0, 89.7, 1.0),
    (17.0, -89.95, 0.5),
    (300.0, 87.5, 2.0),
    (45.0, -86.0, 3.0),
    (0.0, 80.0, 15.0),
    (123.4, 0.0, 0.02),
]


def sky_sample(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Points spread over the sphere plus dense clumps at the hard places."""
    rng = np.random.default_rng(seed)
    parts = [
        (rng.uniform(0, 360, 300), np.degrees(np.arcsin(rng.uniform(-1, 1, 300)))),
        (rng.uniform(0, 360, 150), rng.uniform(86.0, 90.0, 150)),      # north cap
        (rng.uniform(0, 360, 150), rng.uniform(-90.0, -85.0, 150)),    # south cap
        (rng.uniform(-2, 2, 300) % 360, rng.uniform(-35, 15, 300)),     # RA wrap strip
        (rng.uniform(-20, 20, 100) % 360, rng.uniform(70, 90, 100)),   # wrap near the pole
        (rng.normal(123.4, 0.02, 60) % 360, rng.normal(0, 0.02, 60)),  # tight clump
    ]
    ras = np.concatenate([p[0] for p in parts])
    decs = np.concatenate([p[1] for p in parts])
    return ras, decs


@pytest.fixture
def catalogue():
    network = make_network()
    ras, decs = sky_sample()
    Target.objects.bulk_create(
        Target(network=network, name=f"T{i}", name_key=name_key(f"T{i}"), ra_deg=ra, dec_deg=dec)
        for i, (ra, dec) in enumerate(zip(ras, decs, strict=True))
    )
    # A second network's rows at the same places must never leak into the first one's search.
    other = make_network()
    Target.objects.bulk_create(
        Target(network=other, name=f"T{i}", name_key=name_key(f"T{i}"), ra_deg=ra, dec_deg=dec)
        for i, (ra, dec) in enumerate(zip(ras, decs, strict=True))
    )
    rows = list(Target.objects.filter(network=network).values_list("pk", "ra_deg", "dec_deg"))
    return network, np.array(rows)


def brute_force(rows: np.ndarray, ra: float, dec: float, radius: float):
    """Ids inside the cone and ids too close to its edge to judge with float rounding."""
    separation = angular_separation_deg(rows[:, 1], rows[:, 2], ra, dec)
    inside = set(rows[separation <= radius, 0].astype(int))
    ambiguous = set(rows[np.abs(separation - radius) < 1e-8, 0].astype(int))
    return inside, ambiguous


@pytest.mark.parametrize(("ra", "dec", "radius"), CONES)
def test_cone_search_matches_brute_force(catalogue, ra, dec, radius):
    network, rows = catalogue
    expected, ambiguous = brute_force(rows, ra, dec, radius)
    found = cone_search(Target.objects.filter(network=network), ra, dec, radius)
    got = {t.pk for t in found}
    assert got - ambiguous == expected - ambiguous
    assert len(expected) > 0
    separations = [t.separation_deg for t in found]
    assert separations == sorted(separations)
    for target in found:
        assert target.separation_deg == pytest.approx(
            angular_separation_deg(target.ra_deg, target.dec_deg, ra, dec), abs=1e-9)


def test_cone_search_uses_the_backend_implementation(catalogue):
    network, _ = catalogue
    sql = str(cone_search(Target.objects.filter(network=network), 10, 10, 1).query)
    expected = "q3c_radial_query" if connection.vendor == "postgresql" else "datas_separation_deg"
    assert expected in sql


@pytest.mark.postgres_only
def test_q3c_cone_search_uses_the_index(catalogue):
    network, _ = catalogue
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    plan = cone_search(Target.objects.all(), 10, 10, 1).explain()
    assert "target_q3c_idx" in plan


def test_cross_match_matches_brute_force(catalogue):
    network, rows = catalogue
    rng = np.random.default_rng(3)
    # Jittered copies of some catalogue rows (must match them) and random points (mostly not).
    picks = rng.choice(len(rows), 120, replace=False)
    jitter = 1.0 / 3600
    src_dec = np.clip(rows[picks, 2] + rng.uniform(-jitter, jitter, 120), -90, 90)
    src_ra = (rows[picks, 1] + rng.uniform(-jitter, jitter, 120)) % 360
    src_ra = np.concatenate([src_ra, rng.uniform(0, 360, 80)])
    src_dec = np.concatenate([src_dec, rng.uniform(-90, 90, 80)])
    radius = 5.0 / 3600

    matches = cross_match(src_ra, src_dec, Target.objects.filter(network=network), radius)

    expected = {}
    for index, (ra, dec) in enumerate(zip(src_ra, src_dec, strict=True)):
        separation = angular_separation_deg(rows[:, 1], rows[:, 2], ra, dec)
        best = int(np.argmin(separation))
        if separation[best] <= radius:
            expected[index] = (int(rows[best, 0]), separation[best])
    assert {m.source_index: m.object_id for m in matches} == {k: v[0] for k, v in expected.items()}
    for match in matches:
        assert match.separation_deg == pytest.approx(expected[match.source_index][1], abs=1e-9)
    assert len(matches) >= 120  # every jittered copy found, including those at the poles and wrap


def test_cross_match_empty_and_invalid_input(catalogue):
    network, _ = catalogue
    assert cross_match([], [], Target.objects.filter(network=network), 0.1) == []
    with pytest.raises(InvalidSkyPosition):
        cross_match([1.0], [95.0], Target.objects.all(), 0.1)
    with pytest.raises(InvalidSkyPosition):
        cross_match([1.0, 2.0], [5.0], Target.objects.all(), 0.1)


@pytest.mark.parametrize(("ra", "dec", "radius"), [(10, 91, 1), (10, 0, 0), (10, 0, 200), ("x", 0, 1)])
def test_cone_search_rejects_bad_input(ra, dec, radius):
    with pytest.raises(InvalidSkyPosition):
        cone_search(Target.objects.all(), ra, dec, radius)


def test_ra_window_wraps_and_opens_at_the_pole():
    assert ra_window(0.5, 0, 1) == [(pytest.approx(359.5), 360.0), (0.0, pytest.approx(1.5))]
    assert ra_window(359.5, 0, 1) == [(pytest.approx(358.5), 360.0), (0.0, pytest.approx(0.5))]
    assert ra_window(100, 89.5, 1) is None
    (low, high), = ra_window(100, 60, 1)
    assert high - low == pytest.approx(2 * np.degrees(np.arcsin(np.sin(np.radians(1)) / 0.5)), abs=1e-6)


def test_separation_is_exact_at_tiny_and_antipodal_scales():
    assert angular_separation_deg(10, 20, 10, 20 + 1e-9) == pytest.approx(1e-9, rel=1e-6)
    assert angular_separation_deg(0, 0, 180, 0) == pytest.approx(180)
    assert angular_separation_deg(359.9999, 0, 0.0001, 0) == pytest.approx(0.0002, rel=1e-9)
