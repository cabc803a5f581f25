"""Extraction: parity with SExtractor on a real frame, and truth on synthetic Moffat stars."""
import warnings

import numpy as np
import pytest
from astropy.io import fits
from datas_pipeline.detection.extract import FLAG_SATURATED, estimate_background, extract_sources
from datas_pipeline.errors import PipelineError
from datas_pipeline.synthetic.fields import expose, random_stars, render_stars

CATALOG_NAMES = ["number", "x", "y", "xwin", "ywin", "x2", "y2", "xy", "errx2", "erry2", "errxy", "a", "flux_aper", "fluxerr_aper", "kron_radius", "flux_auto", "fluxerr_auto", "fr01", "fr05", "fr06", "flags"]


@pytest.fixture(scope="module")
def sextractor(shared_data):
    """The sep test frame, SExtractor's catalogue of it and our catalogue with its settings."""
    folder = shared_data / "sep"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ESO-LOG cards are not standard FITS
        image = fits.getdata(folder / "image.fits")
    catalog = np.genfromtxt(folder / "image.cat", names=CATALOG_NAMES)
    # default.sex: DETECT_THRESH 1.5, MINAREA 5, DEBLEND_MINCONT 1.0, PHOT_APERTURES 10 (diameter),
    # PHOT_AUTOPARAMS 2.5, 0.0, BACK_SIZE 64, BACK_FILTERSIZE 3, GAIN 0, no weight map.
    ours = extract_sources(
        image, threshold_sigma=1.5, min_area=5, noise="global", aperture_radius=5.0,
        deblend_cont=1.0, kron_params=(2.5, 0.0),
    )
    distance = np.hypot(ours["x"][:, None] - (catalog["x"] - 1)[None], ours["y"][:, None] - (catalog["y"] - 1)[None])
    nearest = distance.argmin(axis=1)
    return image, catalog, ours, catalog[nearest], distance.min(axis=1), folder


def test_same_65_sources_at_the_same_positions(sextractor):
    _, catalog, ours, _, offset, _ = sextractor
    assert len(catalog) == len(ours) == 65
    assert (offset < 0.1).sum() == 65
    assert np.median(offset) < 1e-3


def test_aperture_flux_and_error_match(sextractor):
    _, _, ours, ref, _, _ = sextractor
    ratio = ours["flux"] / ref["flux_aper"]
    assert np.all(np.abs(ratio - 1) < 1e-3)
    assert np.all(np.abs(ours["flux_err"] / ref["fluxerr_aper"] - 1) < 1e-3)


def test_kron_flux_and_windowed_centroids_match(sextractor):
    _, _, ours, ref, _, _ = sextractor
    # One tiny object has KRON_RADIUS 0 in this SExtractor version (sep's own tests note it).
    measured = ref["kron_radius"] > 0
    assert measured.sum() == 64
    assert np.all(np.abs(ours["kron_radius"] - ref["kron_radius"])[measured] < 0.01)
    assert np.all(np.abs(ours["flux_auto"][measured] / ref["flux_auto"][measured] - 1) < 1e-3)
    assert np.median(np.abs(ours["half_light_radius"] - ref["fr05"])) < 0.01
    win = np.hypot(ours["x_win"] - (ref["xwin"] - 1), ours["y_win"] - (ref["ywin"] - 1))
    assert np.median(win) < 1e-3 and (win < 0.1).sum() >= 60


def test_background_matches_sextractor_check_images(sextractor):
    image, _, _, _, _, folder = sextractor
    bkg = estimate_background(image)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level, rms = fits.getdata(folder / "back.fits"), fits.getdata(folder / "rms.fits")
    assert np.allclose(bkg.level, level, rtol=1e-6)
    assert np.allclose(bkg.rms, rms, rtol=1e-4)


@pytest.mark.parametrize(("fwhm", "beta"), [(2.0, 2.5), (3.5, 4.5), (6.0, 3.0)])
def test_fwhm_is_the_true_moffat_fwhm(fwhm, beta):
    rng = np.random.default_rng(7)
    stars = random_stars((384, 384), 80, rng, flux_range=(3e4, 3e5), margin=20)
    image = expose(render_stars((384, 384), stars, fwhm=fwhm, beta=beta), rng)
    found = extract_sources(image)
    fitted = np.isfinite(found["moffat_beta"])
    assert fitted.sum() > 0.9 * len(found)
    assert abs(np.median(found["fwhm"][fitted]) / fwhm - 1) < 0.03
    assert abs(np.median(found["moffat_beta"][fitted]) - beta) < 0.5 * beta
    # Sources beyond the fitted ones are scaled to the same PSF, not 25 % too wide.
    assert abs(np.median(found["fwhm"]) / fwhm - 1) < 0.05


def test_positions_and_elongation_of_trailed_stars():
    rng = np.random.default_rng(3)
    stars = random_stars((256, 256), 40, rng, flux_range=(5e4, 3e5), margin=25)
    image = expose(render_stars((256, 256), stars, fwhm=3.0, elongation=2.0, angle_deg=30), rng)
    found = extract_sources(image)
    d = np.hypot(found["x"][:, None] - stars["x"][None], found["y"][:, None] - stars["y"][None])
    assert np.median(d.min(axis=1)) < 0.1
    assert 1.7 < np.median(found["elongation"]) < 2.3
    assert abs(np.degrees(np.median(found["theta"])) - 30) < 5


def test_saturated_sources_are_flagged_and_nan_pixels_tolerated():
    rng = np.random.default_rng(5)
    stars = random_stars((200, 200), 20, rng, flux_range=(1e4, 1e6), margin=20)
    image = np.minimum(expose(render_stars((200, 200), stars, fwhm=3.0), rng), 30000.0)
    image[10:20, 10:20] = np.nan
    found = extract_sources(image, saturation=30000.0)
    brightest = found[np.argmax(found["peak"])]
    assert int(brightest["flag"]) & FLAG_SATURATED and np.isnan(brightest["moffat_beta"])
    assert np.all(np.isfinite(found["x"]))


def test_empty_field_gives_an_empty_table_and_bad_shapes_are_refused():
    image = np.random.default_rng(1).normal(100, 5, (64, 64))
    assert len(extract_sources(image)) == 0
    with pytest.raises(PipelineError, match="2-D"):
        extract_sources(np.zeros((3, 8, 8)))
    with pytest.raises(PipelineError, match="mask shape"):
        extract_sources(image, mask=np.zeros((10, 10), bool))
    with pytest.raises(PipelineError, match="noise is zero"):
        extract_sources(np.zeros((64, 64)))
