"""Factories for frame tests: Frame rows, and small FITS files with known content."""
from __future__ import annotations

import hashlib
import io
import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
from astropy.io import fits

from observations.frames import Frame
from observations.states import FrameState
from sites.models import Site

_serial = itertools.count(1)


def make_frame(site: Site, **fields) -> Frame:
    """A catalogued frame row (no file behind it) with a unique fake hash."""
    n = next(_serial)
    defaults = dict(network=site.network, sha256=hashlib.sha256(f"frame {n}".encode()).hexdigest(),
                    size_bytes=2880 * 10, storage_key=f"frames/test/{n}.fits", original_name=f"frame{n}.fits",
                    width=512, height=512, image_type="light", observed_at=datetime(2026, 11, 1, tzinfo=UTC),
                    exposure_s=30.0, filter="V", state=FrameState.DONE)
    defaults.update(fields)
    return Frame.objects.create(site=site, **defaults)


def light_header(**cards) -> fits.Header:
    """A header good enough to be accepted: time, exposure, type, filter, pointing, site."""
    header = fits.Header()
    observed = datetime.now(UTC) - timedelta(hours=2)
    values = {"DATE-OBS": observed.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], "EXPTIME": 30.0,
              "IMAGETYP": "Light Frame", "FILTER": "V", "OBJECT": "field", "RA": 83.6, "DEC": 22.0,
              "SITELAT": 28.76, "SITELONG": -17.88, "INSTRUME": "Test camera", "XBINNING": 1, "YBINNING": 1,
              "GAIN": 1.0, "EGAIN": 1.0, "OFFSET": 10, "CCD-TEMP": -10.0}
    values.update(cards)
    for key, value in values.items():
        if value is not None:
            header[key] = value
    return header


def fits_bytes(data: np.ndarray | None = None, header: fits.Header | None = None, seed: int = 0) -> bytes:
    """A small 16-bit FITS frame (noise around 1000 ADU unless ``data`` is given)."""
    if data is None:
        data = np.random.default_rng(seed).normal(1000.0, 10.0, (64, 80))
    out = io.BytesIO()
    fits.PrimaryHDU(np.clip(np.rint(data), 0, 65535).astype(np.uint16),
                    header=header if header is not None else light_header()).writeto(out)
    return out.getvalue()
