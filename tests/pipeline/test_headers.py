"""Header normalisation: every usual spelling read, the missing and contradictory reported."""
from datetime import UTC, datetime

import pytest
from astropy.io import fits
from datas_pipeline.io.fits import read_frame
from datas_pipeline.io.headers import normalise_header, parse_angle


def nina_header(**changes) -> fits.Header:
    """A light frame as N.I.N.A. writes it (CMOS: GAIN is a setting, EGAIN is e-/ADU)."""
    cards = {
        "IMAGETYP": "LIGHT", "EXPOSURE": 120.0, "EXPTIME": 120.0, "DATE-OBS": "2024-03-05T21:14:07.123",
        "XBINNING": 2, "YBINNING": 2, "GAIN": 100, "EGAIN": 0.25, "OFFSET": 30, "CCD-TEMP": -10.1,
        "SET-TEMP": -10.0, "INSTRUME": "ZWO ASI2600MM Pro", "TELESCOP": "RedCat 51", "FOCALLEN": 250.0,
        "XPIXSZ": 7.52, "FILTER": "Ha", "OBJECT": "M 42", "RA": 83.8221, "DEC": -5.3911,
        "OBJCTRA": "05 35 17.300", "OBJCTDEC": "-05 23 28.00", "SITELAT": 52.5, "SITELONG": -1.25,
        "SITEELEV": 120.0,
    }
    cards.update(changes)
    return fits.Header({k: v for k, v in cards.items() if v is not None})


def test_a_complete_header_has_no_issues():
    h = normalise_header(nina_header())
    assert h.issues == ()
    assert h.date_obs == datetime(2024, 3, 5, 21, 14, 7, 123000, tzinfo=UTC)
    assert h.exposure_s == 120.0 and h.image_type == "light" and h.filter == "Ha"
    assert h.binning == (2, 2) and h.gain == 100 and h.electrons_per_adu == 0.25 and h.offset == 30
    assert h.temperature_c == pytest.approx(-10.1) and h.camera == "ZWO ASI2600MM Pro"
    assert h.ra_deg == pytest.approx(83.8221) and h.dec_deg == pytest.approx(-5.3911)
    assert (h.site_lat_deg, h.site_lon_deg, h.site_elevation_m) == (52.5, -1.25, 120.0)
    assert h.pixel_scale_arcsec == pytest.approx(206.2648 * 7.52 / 250.0)
    assert h.mid_exposure == datetime(2024, 3, 5, 21, 15, 7, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "hours", "degrees"),
    [("05 35 17.3", True, 83.822083), ("05:35:17.3", True, 83.822083), ("5h35m17.3s", False, 83.822083),
     ("-00:55:31", False, -0.925278), ("+46:52:00.408", False, 46.866780), ("-05 23 28", False, -5.391111),
     (83.8221, True, 83.8221), ("331.0334", True, 331.0334)],
)
def test_sexagesimal_and_decimal_angles(value, hours, degrees):
    assert parse_angle(value, hours=hours) == pytest.approx(degrees, abs=1e-6)


@pytest.mark.parametrize(
    ("written", "kind"),
    [("Light Frame", "light"), ("object", "light"), ("Dark Frame", "dark"), ("DARKFLAT", "dark"),
     ("Flat Field", "flat"), ("SKYFLAT", "flat"), ("Bias Frame", "bias"), ("zero", "bias")],
)
def test_image_type_spellings(written, kind):
    assert normalise_header(nina_header(IMAGETYP=written)).image_type == kind


def test_contradictions_are_reported_not_guessed():
    h = normalise_header(nina_header(EXPTIME=60.0, OBJCTRA="06 00 00", CCDTEMP=5.0))
    assert h.exposure_s is None and h.ra_deg is None and h.temperature_c is None
    fields = {(i.field, i.kind) for i in h.issues}
    assert {("exposure_s", "contradictory"), ("pointing", "contradictory"), ("temperature_c", "contradictory")} <= fields
    message = next(i.message for i in h.issues if i.field == "exposure_s")
    assert "EXPTIME = 60" in message and "EXPOSURE = 120" in message


def test_missing_keywords_are_listed():
    h = normalise_header(fits.Header({"IMAGETYP": "LIGHT", "EXPTIME": 10.0}))
    missing = {i.field for i in h.issues if i.kind == "missing"}
    assert {"date_obs", "filter", "camera", "binning", "gain", "offset", "temperature_c",
            "object_name", "pointing", "site_lat_deg", "site_lon_deg"} <= missing
    # Calibration frames are not asked for a target, a pointing, a site or (darks) a filter.
    dark = normalise_header(fits.Header({"IMAGETYP": "DARK", "EXPTIME": 10.0}))
    assert not {"object_name", "pointing", "site_lat_deg", "filter"} & dark.issue_fields()


def test_gain_without_egain_is_not_taken_as_electrons_per_adu():
    h = normalise_header(nina_header(EGAIN=None))
    assert h.gain == 100 and h.electrons_per_adu is None
    assert "electrons_per_adu" in h.issue_fields()


def test_invalid_values_are_reported():
    h = normalise_header(nina_header(EXPTIME="long", EXPOSURE=None, OBJCTRA="99:99:99", DATE_OBS=None))
    assert h.exposure_s is None and ("exposure_s", "invalid") in {(i.field, i.kind) for i in h.issues}
    bad_date = normalise_header(nina_header(**{"DATE-OBS": "yesterday"}))
    assert bad_date.date_obs is None and "date_obs" in bad_date.issue_fields()


def test_dates_from_other_keywords_and_time_scales():
    h = normalise_header(nina_header(**{"DATE-OBS": "2013-07-13", "UT": "00:57:33"}))
    assert h.date_obs == datetime(2013, 7, 13, 0, 57, 33, tzinfo=UTC)
    mjd = normalise_header(nina_header(**{"DATE-OBS": None, "MJD-OBS": 60000.5}))
    assert mjd.date_obs == datetime(2023, 2, 25, 12, 0, tzinfo=UTC)
    tt = normalise_header(nina_header(**{"DATE-OBS": "2024-01-01T00:01:09.184", "TIMESYS": "TT"}))
    assert tt.date_obs == datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
    clash = normalise_header(nina_header(**{"MJD-OBS": 60374.5}))
    assert clash.date_obs is None and "date_obs" in clash.issue_fields()


def test_real_headers(shared_data):
    saao = normalise_header(read_frame(shared_data / "ccdproc" / "a8280271.fits").header)
    assert saao.date_obs == datetime(2013, 7, 13, 0, 57, 33, tzinfo=UTC)  # integral MJD-OBS is day-only
    assert saao.exposure_s == pytest.approx(150.04) and saao.image_type == "light"
    assert saao.electrons_per_adu == 1.9  # its GAIN comment says e-/ADU
    assert saao.ra_deg == pytest.approx(331.0333, abs=1e-3) and saao.dec_deg == pytest.approx(-0.9253, abs=1e-3)
    assert ("temperature_c", "invalid") in {(i.field, i.kind) for i in saao.issues}  # 180.2: Kelvin
    maxim = normalise_header(read_frame(shared_data / "ccdproc" / "sip-wcs.fit").header)
    assert maxim.site_lon_deg == pytest.approx(-96.453278) and maxim.site_lat_deg == pytest.approx(46.86678)
    assert maxim.binning == (1, 1) and maxim.set_temperature_c == pytest.approx(-18.9)
    eso = normalise_header(read_frame(shared_data / "sep" / "image.fits").header)
    assert eso.date_obs.year == 1992 and eso.exposure_s == 1200.0
