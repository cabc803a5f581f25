"""The bundled demo catalogue parses, is in range, unique, and its positions are sane."""
import pytest

from targets.catalogue import read_catalogue
from targets.models import TargetType, name_key
from targets.sky import angular_separation_deg


@pytest.fixture(scope="module")
def catalogue():
    return {entry.name: entry for entry in read_catalogue()}


def test_a_few_hundred_unique_targets_of_known_types(catalogue):
    assert len(catalogue) >= 250
    assert all(f"M{n}" in catalogue for n in range(1, 111))
    keys = [name_key(n) for e in catalogue.values() for n in (e.name, *e.aliases)]
    assert len(keys) == len(set(keys)), "a name or alias appears twice"
    assert {e.target_type for e in catalogue.values()} <= set(TargetType.values)
    assert all(0 <= e.ra_deg < 360 and -90 <= e.dec_deg <= 90 for e in catalogue.values())


@pytest.mark.parametrize(("a", "b", "arcmin", "tolerance"), [
    ("M31", "M32", 24.6, 0.5),          # M32 sits 24.6' south of M31's nucleus
    ("M81", "M82", 37.0, 1.0),
    ("M42", "M43", 8.0, 1.0),
    ("Castor", "Pollux", 4.5 * 60, 6),
    ("Mizar", "Alioth", 4.2 * 60, 10),  # neighbours in the Plough's handle
    ("Betelgeuse", "Bellatrix", 7.5 * 60, 10),
])
def test_known_separations(catalogue, a, b, arcmin, tolerance):
    ea, eb = catalogue[a], catalogue[b]
    assert angular_separation_deg(ea.ra_deg, ea.dec_deg, eb.ra_deg, eb.dec_deg) * 60 == pytest.approx(
        arcmin, abs=tolerance)


def test_pole_stars_and_periods(catalogue):
    assert catalogue["Polaris"].dec_deg > 89.2 and catalogue["Sigma Octantis"].dec_deg < -88.9
    assert catalogue["Delta Cephei"].period_days == pytest.approx(5.366, abs=0.001)
    assert catalogue["Algol"].period_days == pytest.approx(2.867, abs=0.001)
