"""Portal test data: the two-network world plus frames with real PNG previews in the frame storage."""
from __future__ import annotations

import io
import uuid
from datetime import timedelta

import numpy as np
from astropy.time import Time
from django.test import Client
from django.utils import timezone
from PIL import Image

from observations.frames import Frame
from observations.models import Observation
from observations.storage import product_key, save_bytes
from targets.alerts.models import SurveyPhotometry
from targets.models import Target, name_key
from tests.network.factories import build_world, make_observation
from tests.observations.frame_factories import make_frame


def png_bytes(size: int = 256, seed: int = 0) -> bytes:
    """A star-field-like greyscale PNG (noise plus a few Gaussian stars)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    image = rng.normal(30, 4, (size, size))
    for cx, cy in rng.uniform(20, size - 20, (12, 2)):
        image += 200 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 8.0)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_previewed_frame(site, target, **fields):
    """A done, accepted, solved frame of ``target`` whose preview and thumbnail exist in the storage."""
    frame = make_frame(site, target=target, observed_at=timezone.now() - timedelta(hours=2),
                       ra_deg=target.ra_deg, dec_deg=target.dec_deg, accepted=True, fwhm_arcsec=2.1,
                       footprint=[[target.ra_deg - 0.2, target.dec_deg - 0.15], [target.ra_deg + 0.2, target.dec_deg - 0.15],
                                  [target.ra_deg + 0.2, target.dec_deg + 0.15], [target.ra_deg - 0.2, target.dec_deg + 0.15]],
                       pixel_scale_arcsec=1.4, rotation_deg=12.0, wcs_source="solved",
                       quality={"fwhm_px": 1.5, "accepted": True, "reasons": []},
                       photometry={"magnitude": 4.1, "zero_point": 21.3, "calibrated": True},
                       fits_header=[["SIMPLE", True, "conforms to FITS"], ["EXPTIME", 30.0, "seconds"]],
                       timings={"header": 0.01, "solve": 1.2}, **fields)
    frame.preview_key = save_bytes(product_key(site.network_id, frame.sha256, "preview"), png_bytes(512, frame.pk))
    frame.thumbnail_key = save_bytes(product_key(site.network_id, frame.sha256, "thumbnail"), png_bytes(96, frame.pk))
    frame.save(update_fields=["preview_key", "thumbnail_key"])
    return frame


def build_portal_world():
    """`build_world` plus a light curve (calibrated V, instrumental V) and a previewed frame per network."""
    world = build_world()
    now = timezone.now()
    for prefix in ("a", "b"):
        target, site = getattr(world, f"{prefix}_target"), getattr(world, f"{prefix}_site")
        for i in range(30):
            make_observation(target, site, observed_at=now - timedelta(hours=6 * i), filter="V",
                             magnitude=4.0 + 0.4 * np.sin(i / 3), magnitude_error=0.01, photometry_method="ensemble")
        for i in range(10):
            make_observation(target, site, observed_at=now - timedelta(hours=6 * i + 1), filter="V",
                             magnitude=-8.5, magnitude_error=0.02, photometry_method="instrumental")
        setattr(world, f"{prefix}_frame", make_previewed_frame(site, target))
    return world


# (band, magnitude, error, limiting magnitude): two g detections, two g upper limits, one r detection.
SURVEY_POINTS = [("ztf-g", 4.6, 0.05, None), ("ztf-g", 4.4, 0.06, None), ("ztf-g", None, None, 5.3),
                 ("ztf-g", None, None, 5.6), ("ztf-r", 3.9, 0.04, None)]


def add_survey_points(target, offset_mag: float = 0.0, prefix: str = "p") -> None:
    """ZTF points of ``target`` over the last days, as alert ingestion stores them."""
    now = timezone.now()
    for i, (band, mag, err, limit) in enumerate(SURVEY_POINTS):
        at = now - timedelta(days=6 - i, hours=3)
        SurveyPhotometry.objects.create(
            network=target.network, target=target, source="ZTF", point_id=f"{prefix}{i}", observed_at=at,
            jd=Time(at).jd, band=band, magnitude=None if mag is None else mag + offset_mag, magnitude_error=err,
            limiting_mag=limit)


def build_big_world(n_targets: int, n_observations: int, on_one_target: int, n_frames: int):
    """`build_world` plus a big network A, bulk-written: ``n_targets`` targets, ``n_observations``
    observations every 7 minutes back from now (``on_one_target`` of them on ``a_target``), and
    ``n_frames`` frames of ``a_target`` every 9 minutes (every 7th rejected, every 50th failed)."""
    world = build_world()
    rng = np.random.default_rng(7)
    targets = Target.objects.bulk_create(
        [Target(network=world.a, name=f"Star {i:05d}", name_key=name_key(f"Star {i:05d}"),
                ra_deg=float(rng.uniform(0, 360)), dec_deg=float(np.degrees(np.arcsin(rng.uniform(-1, 1)))))
         for i in range(n_targets)], batch_size=5000)
    now = timezone.now()
    busy = world.a_target
    rows = []
    for i in range(n_observations):
        target = busy if i < on_one_target else targets[i % n_targets]
        rows.append(Observation(observation_id=uuid.uuid4(), network=world.a, target=target, site=world.a_site,
                                observed_at=now - timedelta(minutes=7 * i), exposure_sec=30, filter="V",
                                magnitude=10 + 0.1 * np.sin(i / 50), magnitude_error=0.02,
                                ra_deg=target.ra_deg, dec_deg=target.dec_deg))
    Observation.objects.bulk_create(rows, batch_size=5000)
    Frame.objects.bulk_create(
        [Frame(network=world.a, site=world.a_site, target=busy, sha256=f"{i:064x}", size_bytes=1000,
               storage_key=f"frames/x/{i}.fits", image_type="light", observed_at=now - timedelta(minutes=9 * i),
               uploaded_at=now - timedelta(minutes=9 * i), filter="V", ra_deg=busy.ra_deg, dec_deg=busy.dec_deg,
               fwhm_arcsec=2 + (i % 10) / 10, accepted=i % 7 != 0, quality_flags=[] if i % 7 else ["elongated"],
               state="done" if i % 50 else "failed", state_reason="" if i % 50 else "solve: no stars",
               photometry={"zero_point": 21.0 + (i % 5) / 10})
         for i in range(n_frames)], batch_size=2500)
    return world


def client_for(user) -> Client:
    """A test client logged in as ``user``."""
    client = Client()
    client.force_login(user)
    return client
