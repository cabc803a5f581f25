"""The fast card parser and WCS reader give what astropy gives."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from datas_pipeline.archive.cards import CardMap, parse_cards
from datas_pipeline.archive.wcsfast import cards_wcs, describe_wcs_fast
from datas_pipeline.astrometry.solve import describe_wcs
from datas_pipeline.io.headers import normalise_header
from datas_pipeline.synthetic.fields import make_wcs


def test_cards_read_as_astropy_reads_them():
    header = fits.Header()
    header["IMAGETYP"] = "Light Frame"
    header["EXPTIME"] = (300.0, "[s] exposure")
    header["GAIN"] = (1.4, "e-/ADU")
    header["QUOTED"] = "it's / not a comment"
    header["BIG"] = 1.5e30
    header["DEXP"] = 1.0  # rewritten below with a Fortran D exponent
    header["FLAG"] = False
    header["UNSET"] = fits.card.UNDEFINED
    header["DATE-OBS"] = "2025-12-01T21:00:00"
    header["OBJCTRA"] = "05 34 31.9"
    header.add_history("calibrated by nothing")
    text = header.tostring().replace("DEXP    =                  1.0", "DEXP    =               1.0D+2")
    reference = fits.Header.fromstring(text)
    ours = parse_cards(text)
    assert [(k, v if not isinstance(v, fits.card.Undefined) else None, c) for k, v, c in ours] == \
        [(c.keyword, c.value if not isinstance(c.value, fits.card.Undefined) else None, c.comment)
         for c in reference.cards]
    assert normalise_header(CardMap(ours)) == normalise_header(reference)


@pytest.mark.parametrize("form", ["pc", "cd", "crota"])
def test_linear_wcs_matches_astropy(form):
    truth = make_wcs(83.6, 22.0, 1.7, (300, 400), rotation_deg=37.0)
    header = truth.to_header()
    if form == "cd":
        header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 83.6, "CRVAL2": 22.0,
                              "CRPIX1": 200.5, "CRPIX2": 150.5, **{f"CD{i + 1}_{j + 1}": truth.wcs.cd[i, j]
                                                                   for i in range(2) for j in range(2)}})
    if form == "crota":
        header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 83.6, "CRVAL2": 22.0,
                              "CRPIX1": 200.5, "CRPIX2": 150.5, "CDELT1": -1.7 / 3600, "CDELT2": 1.7 / 3600,
                              "CROTA2": 37.0})
    header["OBJECT"] = "noise"
    ours, keywords = cards_wcs(parse_cards(header.tostring()))
    theirs = WCS(header)
    x, y = np.meshgrid([0, 123, 399], [0, 77, 299])
    assert np.allclose(ours.all_pix2world(x, y, 0), theirs.all_pix2world(x, y, 0), atol=1e-9)
    fast, slow = describe_wcs_fast(ours, (300, 400)), describe_wcs(theirs, (300, 400))
    assert fast["flipped"] == slow["flipped"]
    for key in ("ra_deg", "dec_deg", "pixel_scale_arcsec", "rotation_deg"):
        assert fast[key] == pytest.approx(slow[key], abs=1e-7)
    assert "OBJECT" not in keywords and keywords["CTYPE1"] == "RA---TAN"


def test_sip_goes_through_astropy():
    header = make_wcs(10.0, 80.0, 5.0, (100, 100)).to_header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    header.update({"A_ORDER": 2, "B_ORDER": 2, "A_2_0": 1e-6, "B_0_2": -1e-6})
    ours, _ = cards_wcs(parse_cards(header.tostring()))
    assert ours.sip is not None
