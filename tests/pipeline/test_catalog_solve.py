"""Small fields (15-30') solved against Tycho-2 around a hint, on skies rendered from the index stars."""
import json
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from datas_pipeline.astrometry.catalog_solve import fit_tan_wcs, from_tangent_plane, tangent_plane
from datas_pipeline.astrometry.limits import run_limited
from datas_pipeline.astrometry.solve import SolveHints, solve_image
from datas_pipeline.catalog.reference import tycho2_cone
from datas_pipeline.cli.main import main
from datas_pipeline.io.fits import write_frame
from datas_pipeline.synthetic.fields import catalog_stars, expose, make_wcs, random_stars, sky_image

SHAPE = (1024, 1024)


def pixel_error(wcs, truth, shape=SHAPE) -> float:
    """Largest distance (px) between where ``wcs`` and ``truth`` put the same sky points."""
    gy, gx = np.mgrid[0:shape[0]:64, 0:shape[1]:64]
    ra, dec = wcs.all_pix2world(gx.ravel(), gy.ravel(), 0)
    tx, ty = truth.all_world2pix(ra, dec, 0)
    return float(np.hypot(tx - gx.ravel(), ty - gy.ravel()).max())


def small_field(truth, rng, faint_stars=300, shape=SHAPE):
    """Tycho-2 stars at ``truth`` plus fainter field stars Tycho-2 does not list, exposed with noise."""
    centre = truth.wcs.crval
    stars = catalog_stars(truth, shape, tycho2_cone(centre[0], centre[1], 0.6), flux_at_mag0=3e9)
    tycho_in_field = len(stars)
    faint = random_stars(shape, faint_stars, rng, flux_range=(3e9 * 10**-6.4, 3e9 * 10**-5.0))
    image = expose(sky_image(shape, np.concatenate([stars, faint]), sky=100.0, fwhm=3.0), rng, sky=0.0)
    return image, tycho_in_field


@pytest.mark.parametrize(
    ("ra", "dec", "scale", "rotation", "flip"),
    [(56.75, 24.12, 1.27, 25.0, False),    # 21.7' (the real night's plate scale), the Pleiades
     (280.0, -5.0, 0.9, 200.0, True),      # 15.4', mirrored, Scutum: 5 Tycho-2 stars
     (120.0, 60.0, 1.2, 45.0, False),      # 20.5', high declination, 6 stars
     (359.9, 10.0, 1.75, -70.0, False)],   # 29.9', across RA 0/360
)
def test_small_fields_solve_from_a_header_hint(ra, dec, scale, rotation, flip):
    truth = make_wcs(ra, dec, scale, SHAPE, rotation_deg=rotation, flip=flip)
    image, in_field = small_field(truth, np.random.default_rng(7))
    assert in_field >= 4  # the point of the test: far too few stars for solve-field's quads
    # A mount 0.4 deg off, a focal length known to 8 %.
    hints = SolveHints(ra_deg=(ra + 0.4 / np.cos(np.radians(dec))) % 360, dec_deg=dec - 0.2, radius_deg=1.0,
                       scale_arcsec=scale * 1.08)
    result = solve_image(image, hints, solver="tycho2")
    assert result.solved, result.message
    assert result.seconds < 5.0 and result.rms_arcsec < 0.5
    assert result.matched >= min(in_field, 4) and result.extras["false_alarm"] < 1e-4
    assert pixel_error(result.wcs, truth) < 0.3
    assert result.pixel_scale_arcsec == pytest.approx(scale, rel=1e-3)
    assert result.rotation_deg == pytest.approx(rotation % 360, abs=0.1) and result.flipped is flip


def test_a_wrong_hint_is_refused_with_the_reason():
    truth = make_wcs(56.75, 24.12, 1.27, SHAPE, rotation_deg=25.0)
    image, _ = small_field(truth, np.random.default_rng(8))
    for ra, dec in ((96.75, 12.0), (200.0, -40.0)):
        result = solve_image(image, SolveHints(ra_deg=ra, dec_deg=dec, radius_deg=1.0, scale_arcsec=1.27),
                             solver="tycho2")
        assert not result.solved and result.wcs is None
        assert "matched" in result.message or "chance" in result.message or "no star pattern" in result.message
    result = solve_image(image, SolveHints(), solver="tycho2")
    assert not result.solved and "needs a pointing" in result.message


def test_zero_padded_and_clipped_frames_solve():
    truth = make_wcs(83.8, -5.4, 1.5, SHAPE, rotation_deg=90.0)
    image, _ = small_field(truth, np.random.default_rng(9))
    # A registered frame's padding on two sides, and black sky clipped to zero as a JPEG's is.
    image = np.clip(image - np.median(image) + 2.0, 0, None).astype(np.float32)
    image[:, :150] = 0.0
    image[900:, :] = 0.0
    assert (image == 0).mean() > 0.3
    result = solve_image(image, SolveHints(ra_deg=83.9, dec_deg=-5.3, radius_deg=1.0, scale_arcsec=1.5),
                         solver="tycho2")
    assert result.solved, result.message
    assert pixel_error(result.wcs, truth) < 0.3


def test_tangent_plane_round_trip_and_exact_fit():
    ra = np.array([10.0, 10.2, 9.9, 10.1])
    dec = np.array([89.5, 89.6, 89.7, 89.45])
    xi, eta = tangent_plane(ra, dec, 10.0, 89.6)
    back = [from_tangent_plane(a, b, 10.0, 89.6) for a, b in zip(xi, eta, strict=True)]
    assert np.allclose(back, np.column_stack([ra, dec]), atol=1e-10)
    truth = make_wcs(10.0, 89.6, 1.0, SHAPE, rotation_deg=33.0, flip=True)
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 1023, (12, 2))
    sky_ra, sky_dec = truth.all_pix2world(xy[:, 0], xy[:, 1], 0)
    fitted = fit_tan_wcs(xy, sky_ra, sky_dec, SHAPE, True, 11.0, 89.0)
    assert pixel_error(fitted, truth) < 1e-6


def test_solver_limits_name_what_stopped_the_run():
    busy = run_limited([sys.executable, "-c", "while True: pass"], cpu_limit_s=0.1, wall_limit_s=60,
                       cpu_budget_s=0.5)
    assert busy.stopped_by == "cpu budget" and busy.code is None and busy.cpu_s >= 0.5
    asleep = run_limited(["sleep", "30"], cpu_limit_s=10, wall_limit_s=0.6)
    assert asleep.stopped_by == "wall-clock limit" and asleep.wall_s < 5
    done = run_limited(["echo", "Total CPU time limit reached!"], cpu_limit_s=10)
    assert done.stopped_by is None and done.code == 0 and "limit reached" in done.output


def test_cli_solves_a_small_field_from_its_header_and_blind_ignores_it(capsys, tmp_path):
    truth = make_wcs(56.75, 24.12, 1.27, SHAPE, rotation_deg=25.0)
    image, _ = small_field(truth, np.random.default_rng(10))
    # Pointing 0.2 deg off; the scale from a 0.5 m f/3 telescope's focal length and 9.24 um pixels.
    header = fits.Header({"RA": 56.95, "DEC": 24.0, "FOCALLEN": 1500.0, "XPIXSZ": 1.27 * 1500.0 / 206.265})
    path = write_frame(tmp_path / "small.fits", image, header, dtype=np.uint16)
    out = tmp_path / "s.json"
    assert main(["solve", str(path), "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["solved"] and record["solver"] == "tycho2-hinted" and record["rms_arcsec"] < 0.5
    assert record["hints"]["blind"] is False and record["hints"]["scale_arcsec"] == pytest.approx(1.27, rel=1e-3)
    assert pixel_error(WCS(fits.getheader(path)), truth) < 0.3
    # Blind: the header's hints are not used, so the Tycho-2 matcher has nothing to go on.
    code = main(["solve", str(path), "--json", str(out), "--blind", "--solver", "tycho2", "--no-write"])
    record = json.loads(out.read_text())
    assert code == 1 and not record["solved"] and record["hints"]["ra_deg"] is None
    capsys.readouterr()
    assert main(["solve", str(path), "--json", str(out), "--blind", "--ra", "10", "--dec", "10"]) == 2
    assert "--blind solves without hints" in capsys.readouterr().err
