"""Requested filters resolve to the wheel's exact names, by name first, then by band."""
import numpy as np
import pytest
from datas_pipeline.sky.filters import band_key, coverage_table, match_filter, resolve_filters


@pytest.mark.parametrize("requested, wheel, expected", [
    ("V", ["B", "V", "R"], "V"),
    ("v", ["B", "V", "R"], "V"),  # case does not matter, the wheel's spelling is kept
    ("Ha", ["L", "H-Alpha", "OIII"], "H-Alpha"),
    ("L", ["Luminance", "Red"], "Luminance"),
    ("R", ["Lum", "Red", "Green", "Blue"], "Red"),
    ("R", ["Red", "R"], "R"),  # an exact name beats a synonym
    ("r'", ["sg", "sr", "si"], "sr"),
    ("OIII", ["Ha", "O3"], "O3"),
    ("I", ["B", "V", "Rc"], None),
    ("g'", ["L", "Red", "Green", "Blue"], None),  # Sloan g is not the RGB green
])
def test_match_filter(requested, wheel, expected):
    assert match_filter(requested, wheel) == expected


def test_resolve_keeps_request_order_and_drops_what_the_wheel_lacks():
    assert resolve_filters(["B", "V", "I", "v"], ["V", "B", "Rc"]) == ["B", "V"]


def test_nothing_requested_prefers_luminance_then_the_first_slot():
    assert resolve_filters([], ["Red", "Clear", "Blue"]) == ["Clear"]
    assert resolve_filters([], ["B", "V"]) == ["B"]
    assert resolve_filters([], []) == [""]


def test_band_keys_and_coverage_table():
    assert band_key("H-alpha filter") == band_key("Ha")
    assert band_key("Custom 1") == "name:custom 1"
    table = coverage_table([("B", "V"), ("Ha",), ()], [("V", "R"), ("H-Alpha",), ()])
    assert np.allclose(table, [[0.5, 0, 0], [0, 1, 0], [1, 1, 1]])
