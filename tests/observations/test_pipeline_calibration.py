"""Raw lights: the site's masters are matched and applied before photometry; transient
failures are retried and, past the last retry, recorded."""
import io

import numpy as np
import pytest
from astropy.io import fits
from datas_pipeline.catalog.reference import tycho2_cone
from datas_pipeline.synthetic.fields import (
    STAR_DTYPE,
    catalog_stars,
    make_detector,
    make_wcs,
    read_out,
    sky_image,
)
from django.core.files.uploadedfile import SimpleUploadedFile

import observations.stages as stages
from network.celery import app
from observations.frames import Frame
from observations.storage import StorageUnavailable
from observations.tasks import MAX_RETRIES, backoff_seconds, frame_chain
from tests.network.api_helpers import agent_client
from tests.network.factories import build_world, make_target
from tests.observations.sky_frames import (
    FIELD,
    FLUX_AT_MAG0,
    NIGHT,
    SCALE_ARCSEC,
    SHAPE,
    TARGET,
    TARGET_MAG,
    header_for,
    sky_frame,
)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
EXPOSURE = 60.0


@pytest.fixture
def world():
    world = build_world()
    world.v1 = make_target(world.a, name="V1 Tau", ra_deg=TARGET[0], dec_deg=TARGET[1], magnitude=TARGET_MAG)
    return world


def as_fits(data: np.ndarray, header: fits.Header, dtype=np.float32) -> bytes:
    out = io.BytesIO()
    fits.PrimaryHDU(data.astype(dtype), header=header).writeto(out)
    return out.getvalue()


def upload_and_run(world, data: bytes, name: str) -> Frame:
    response = agent_client(world.a_key).post("/api/v1/frames", {"file": SimpleUploadedFile(name, data)},
                                              format="multipart")
    assert response.status_code == 201, response.content
    frame_chain(response.json()["id"]).apply()
    return Frame.objects.get(pk=response.json()["id"])


def raw_light(detector, rng) -> np.ndarray:
    truth = make_wcs(*FIELD, SCALE_ARCSEC, SHAPE, rotation_deg=20.0)
    stars = catalog_stars(truth, SHAPE, tycho2_cone(*FIELD, 1.5), flux_at_mag0=FLUX_AT_MAG0)
    x, y = truth.all_world2pix([TARGET[0]], [TARGET[1]], 0)
    target = np.array([(x[0], y[0], FLUX_AT_MAG0 * 10 ** (-0.4 * TARGET_MAG))], dtype=STAR_DTYPE)
    photons = sky_image(SHAPE, np.concatenate([stars, target]), sky=150.0, fwhm=2.5)
    return read_out(detector, photons, EXPOSURE, rng)


def test_raw_lights_are_calibrated_with_the_matching_masters(world, frame_store):
    rng = np.random.default_rng(42)
    detector = make_detector(SHAPE, rng, vignetting=0.35, dust_motes=4)
    camera = {"EGAIN": detector.gain, "GAIN": detector.gain, "RDNOISE": detector.read_noise}
    dark = detector.bias + detector.dark_current * EXPOSURE / detector.gain
    masters = [
        upload_and_run(world, as_fits(dark, header_for(NIGHT, IMAGETYP="MASTER DARK", EXPTIME=EXPOSURE, FILTER=None,
                                                       OBJECT=None, NCOMBINE=20, **camera)), "master_dark.fits"),
        upload_and_run(world, as_fits(detector.flat, header_for(NIGHT, IMAGETYP="MASTER FLAT", EXPTIME=2.0,
                                                                OBJECT=None, NCOMBINE=20, **camera)), "flat_V.fits"),
        # A flat of another filter must be refused, with the reason.
        upload_and_run(world, as_fits(detector.flat, header_for(NIGHT, IMAGETYP="MASTER FLAT", EXPTIME=2.0,
                                                                FILTER="B", OBJECT=None, NCOMBINE=20, **camera)),
                       "flat_B.fits"),
    ]
    assert all(m.state == "done" and m.is_master for m in masters), [(m.state, m.state_reason) for m in masters]
    assert not any(m.wcs_source or m.photometry for m in masters)
    raw = raw_light(detector, rng)
    light = upload_and_run(world, as_fits(raw, header_for(NIGHT, **camera), np.uint16), "raw_light.fits")
    assert light.state == "done", light.state_reason
    chosen = light.calibration["masters"]
    assert light.calibration["raw"] is True
    assert (chosen["dark"]["frame_id"], chosen["flat"]["frame_id"]) == (masters[0].pk, masters[1].pk)
    assert chosen["bias"]["frame_id"] is None and "includes the bias" in chosen["bias"]["notes"][0]
    assert any("filter" in reason for reason in chosen["flat"]["refused"])
    measured = light.photometry
    assert measured["calibrated"] is True and "uncalibrated" not in light.quality_flags
    assert abs(measured["magnitude"] - TARGET_MAG) < 3 * measured["magnitude_error"] + 0.015, measured
    # Uncalibrated, the vignetting and dust bias the comparison stars: the zero point scatters more.
    Frame.objects.filter(pk__in=[m.pk for m in masters]).update(is_master=False)
    naive = upload_and_run(world, as_fits(raw + 1.0, header_for(NIGHT, **camera), np.uint16), "raw_again.fits")
    assert "uncalibrated" in naive.quality_flags and naive.photometry["calibrated"] is False
    residuals = lambda f: np.std([s["residual"] for s in f.photometry["comparison_stars"] if s["used"]])  # noqa: E731
    assert residuals(naive) > 1.5 * residuals(light)


def test_transient_failures_are_retried_then_recorded(world, frame_store, monkeypatch):
    frame_bytes = sky_frame(0, seed=3).data
    original = stages.local_copy
    failures = {"left": 2}

    def flaky(key, sha256):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise StorageUnavailable("S3 answered 503 Slow Down")
        return original(key, sha256)

    monkeypatch.setattr(stages, "local_copy", flaky)
    # Run retries in-process as a worker would (eager mode otherwise re-raises the Retry).
    monkeypatch.setitem(app.conf, "task_eager_propagates", False)
    frame = upload_and_run(world, frame_bytes, "flaky.fits")
    assert frame.state == "done" and failures["left"] == 0
    assert frame.attempts == 7 + 2  # the header stage started three times
    assert all(0.5 <= backoff_seconds(n) / (5 * 2**n) <= 1.0 for n in range(4))
    assert 300 <= backoff_seconds(20) <= 600

    def down(key, sha256):
        raise StorageUnavailable("connection refused")

    monkeypatch.setattr(stages, "local_copy", down)
    lost = upload_and_run(world, sky_frame(1, seed=3).data, "lost.fits")
    assert lost.state == "failed"
    assert lost.state_reason == (f"header: gave up after {MAX_RETRIES + 1} attempts: StorageUnavailable: "
                                 f"connection refused")
