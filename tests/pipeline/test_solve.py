"""Plate solving on synthetic Tycho-2 skies with a known WCS, and WCS propagation."""
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import Sip
from datas_pipeline.astrometry.solve import (
    SolveError,
    SolveHints,
    available_solvers,
    describe_wcs,
    propagate_wcs,
    solve_image,
    wcs_to_header,
)
from datas_pipeline.catalog.reference import tycho2_cone
from datas_pipeline.detection.extract import extract_sources
from datas_pipeline.errors import NoStarsError, RegistrationError
from datas_pipeline.io.headers import normalise_header
from datas_pipeline.synthetic.fields import catalog_stars, expose, make_wcs, sky_image

SHAPE = (512, 512)


def pixel_error(wcs, truth, shape=SHAPE) -> float:
    """Largest distance (px) between where ``wcs`` and ``truth`` put the same sky points."""
    gy, gx = np.mgrid[0:shape[0]:16, 0:shape[1]:16]
    ra, dec = wcs.all_pix2world(gx.ravel(), gy.ravel(), 0)
    tx, ty = truth.all_world2pix(ra, dec, 0)
    return float(np.hypot(tx - gx.ravel(), ty - gy.ravel()).max())


def tycho_frame(truth, rng, fwhm=2.5):
    centre = truth.wcs.crval
    stars = catalog_stars(truth, SHAPE, tycho2_cone(centre[0], centre[1], 2.5), flux_at_mag0=3e8)
    return expose(sky_image(SHAPE, stars, sky=100.0, fwhm=fwhm), rng, sky=0.0)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ra", "dec", "scale", "rotation", "flip"),
    [(56.75, 24.12, 14.0, 25.0, False),   # the Pleiades, 2.0 deg field
     (359.8, 10.0, 10.0, 200.0, True)],   # across RA 0/360, mirrored, 1.4 deg field
)
def test_solved_wcs_is_within_a_third_of_a_pixel_of_the_truth(ra, dec, scale, rotation, flip):
    truth = make_wcs(ra, dec, scale, SHAPE, rotation_deg=rotation, flip=flip)
    image = tycho_frame(truth, np.random.default_rng(1))
    # Hints as a mount and a focal length give them: 0.3 deg off, scale within 15 %.
    hints = SolveHints(ra_deg=(ra + 0.3) % 360, dec_deg=dec - 0.2, radius_deg=2.0, scale_arcsec=scale * 1.05)
    result = solve_image(image, hints, cpu_limit_s=20, timeout_s=60)
    assert result.solved, result.message
    assert pixel_error(result.wcs, truth) < 0.3
    assert result.pixel_scale_arcsec == pytest.approx(scale, rel=1e-3)
    assert result.rotation_deg == pytest.approx(rotation, abs=0.05) and result.flipped is flip
    assert result.matched >= 10 and result.rms_arcsec < scale
    assert result.seconds < 30 and result.index.startswith("index-tycho2")


@pytest.mark.slow
def test_an_unsolvable_field_stops_at_the_cpu_limit():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 511, 60), rng.uniform(0, 511, 60)
    sources = np.zeros(60, dtype=[("x_win", "f8"), ("y_win", "f8"), ("flux", "f8")])
    sources["x_win"], sources["y_win"], sources["flux"] = x, y, rng.uniform(1e3, 1e5, 60)
    result = solve_image(np.zeros(SHAPE), SolveHints(scale_arcsec=14.0, ra_deg=10, dec_deg=10, radius_deg=1),
                         cpu_limit_s=2, timeout_s=20, sources=sources)
    assert not result.solved and result.wcs is None and result.seconds < 20


def test_propagated_wcs_follows_the_sequence():
    rng = np.random.default_rng(4)
    reference_truth = make_wcs(83.8, -5.4, 10.0, SHAPE, rotation_deg=10.0)
    reference = extract_sources(tycho_frame(reference_truth, rng))
    reference_xy = np.column_stack([reference["x_win"], reference["y_win"]])
    for _ in range(3):
        truth = make_wcs(83.8 + rng.uniform(-0.05, 0.05), -5.4 + rng.uniform(-0.05, 0.05), 10.0, SHAPE,
                         rotation_deg=10.0 + rng.uniform(-0.4, 0.4))
        frame = extract_sources(tycho_frame(truth, rng, fwhm=rng.uniform(2.3, 3.0)))
        result = propagate_wcs(reference_truth, reference_xy, np.column_stack([frame["x_win"], frame["y_win"]]))
        assert pixel_error(result.wcs, truth) < 0.3
        assert result.registration.quality.inliers >= 40 and result.registration.quality.rms_px < 0.3
        assert result.seconds < 0.5


def test_propagation_through_a_distorted_reference():
    reference = make_wcs(120.0, 40.0, 10.0, SHAPE)
    reference.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    a = np.zeros((3, 3))
    b = np.zeros((3, 3))
    a[2, 0], b[0, 2] = 2e-6, -1.5e-6
    reference.sip = Sip(a, b, None, None, reference.wcs.crpix)
    reference.pixel_shape = SHAPE[::-1]
    rng = np.random.default_rng(5)
    ref_xy = rng.uniform(10, 500, (120, 2))
    shift = np.array([7.3, -4.1])
    frame_xy = ref_xy - shift  # the frame sees every star 7.3 px left and 4.1 px up
    result = propagate_wcs(reference, ref_xy, frame_xy)
    ra_ref, dec_ref = reference.all_pix2world(ref_xy[:, 0], ref_xy[:, 1], 0)
    fx, fy = result.wcs.all_world2pix(ra_ref, dec_ref, 0)
    assert np.max(np.hypot(fx - frame_xy[:, 0], fy - frame_xy[:, 1])) < 0.05


def test_propagation_refuses_what_a_sequence_cannot_produce():
    reference = make_wcs(83.8, -5.4, 10.0, SHAPE)
    reference.pixel_shape = SHAPE[::-1]
    rng = np.random.default_rng(6)
    ref = rng.uniform(0, 500, (100, 2))
    centre = np.array([250.0, 250.0])
    with pytest.raises(RegistrationError, match="matched the reference|pattern|chance"):
        propagate_wcs(reference, ref, rng.uniform(0, 500, (100, 2)))  # another field
    zoomed = (ref - centre) * 1.03 + centre
    with pytest.raises(RegistrationError, match="scale"):
        propagate_wcs(reference, ref, zoomed)  # a sequence keeps its plate scale
    with pytest.raises(RegistrationError, match="stars"):
        propagate_wcs(reference, ref, ref[:2])


def test_propagation_survives_a_meridian_flip():
    reference = make_wcs(83.8, -5.4, 10.0, SHAPE, rotation_deg=10.0)
    reference.pixel_shape = SHAPE[::-1]
    rng = np.random.default_rng(8)
    ref_xy = rng.uniform(10, 500, (80, 2))
    centre = np.array([255.5, 255.5])
    flipped = 2 * centre - ref_xy + np.array([3.2, -1.7])  # 180 degrees about the centre, plus drift
    result = propagate_wcs(reference, ref_xy, flipped)
    ra, dec = reference.all_pix2world(ref_xy[:, 0], ref_xy[:, 1], 0)
    fx, fy = result.wcs.all_world2pix(ra, dec, 0)
    assert np.max(np.hypot(fx - flipped[:, 0], fy - flipped[:, 1])) < 0.01
    assert abs(abs(result.registration.quality.rotation_deg) - 180.0) < 0.01


def test_wcs_description_and_header():
    wcs = make_wcs(10.0, -30.0, 3.6, (100, 200), rotation_deg=300.0, flip=True)
    info = describe_wcs(wcs, (100, 200))
    assert info["pixel_scale_arcsec"] == pytest.approx(3.6, rel=1e-4)
    assert info["rotation_deg"] == pytest.approx(300.0, abs=1e-3) and info["flipped"]
    old = fits.Header({"CTYPE1": "RA---TAN", "CDELT1": -0.1, "CROTA2": 5.0, "OBJECT": "M 31"})
    header = wcs_to_header(wcs, old)
    assert "CROTA2" not in header and header["OBJECT"] == "M 31"
    from astropy.wcs import WCS

    assert pixel_error(WCS(header), wcs, (100, 200)) < 1e-9


def test_hints_and_refusals():
    info = normalise_header(fits.Header({"RA": 56.75, "DEC": 24.1, "FOCALLEN": 400.0, "XPIXSZ": 3.76}))
    hints = SolveHints.from_header(info, radius_deg=1.0)
    assert hints.ra_deg == 56.75 and hints.radius_deg == 1.0
    assert hints.scale_arcsec == pytest.approx(206.265 * 3.76 / 400.0, rel=1e-4)
    with pytest.raises(SolveError, match="unknown solver"):
        solve_image(np.zeros((10, 10)), solver="pinpoint")
    with pytest.raises(NoStarsError, match="at least 5"):
        solve_image(np.random.default_rng(0).normal(100, 5, (128, 128)))
    if not available_solvers()["astap"]:
        image, _ = np.zeros(SHAPE), None
        stars = np.zeros(10, dtype=[("x_win", "f8"), ("y_win", "f8"), ("flux", "f8")])
        with pytest.raises(SolveError, match="ASTAP is not installed"):
            solve_image(image, solver="astap", sources=stars)
