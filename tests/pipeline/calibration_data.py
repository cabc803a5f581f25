"""Calibration frames shaped like the real SAAO raw frame, and ccdproc's reduction of them."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

RAW_NAME = "a8280271.fits"
DARK_EXPOSURE = 300.0
FLAT_EXPOSURE = 2.0


def raw_light(shared_data: Path) -> tuple[np.ndarray, fits.Header]:
    with fits.open(shared_data / "ccdproc" / RAW_NAME) as hdul:
        return hdul[0].data.astype(np.float64), hdul[0].header.copy()


def calibration_set(light: np.ndarray, header: fits.Header, seed: int = 11, n: int = 5):
    """Seeded bias, dark and flat frames with the light's shape, overscan level and header."""
    rng = np.random.default_rng(seed)
    level = float(np.median(light[:, 3:13]))
    ny, nx = light.shape
    base = {k: header[k] for k in ("INSTRUME", "BIASSEC", "TRIMSEC", "GAIN", "RDNOISE") if k in header}
    columns = rng.normal(0, 2.0, nx)[None, :]
    hot = rng.random((ny, nx)) < 1e-3
    current = np.where(hot, 3.0, 0.01)
    yy, xx = np.mgrid[0:ny, 0:nx]
    response = 1.0 - 0.2 * (((xx - nx / 2) / nx) ** 2 + ((yy - ny / 2) / ny) ** 2)

    def frame(kind: str, exposure: float, light_e: float) -> tuple[np.ndarray, fits.Header]:
        drift = rng.normal(0, 3.0)
        data = level + drift + columns + rng.normal(0, 2.6, (ny, nx))
        data += rng.poisson(current * exposure + response * light_e) / 1.9
        data[:, :13] = level + drift + rng.normal(0, 2.6, (ny, 13))
        if rng.random() < 0.5:  # a cosmic ray or two, for the clipping to find
            data[rng.integers(0, ny), rng.integers(20, nx - 10)] += 5000
        head = fits.Header({**base, "IMAGETYP": kind, "EXPTIME": exposure})
        return np.rint(data), head

    biases = [frame("BIAS", 0.0, 0.0) for _ in range(n)]
    darks = [frame("DARK", DARK_EXPOSURE, 0.0) for _ in range(n)]
    flats = [frame("FLAT", FLAT_EXPOSURE, rng.uniform(15000, 25000)) for _ in range(n)]
    return biases, darks, flats


def ccdproc_reduction(light, header, biases, darks, flats):
    """The same reduction done by ccdproc, the reference: returns masters and the light."""
    import astropy.units as u
    import ccdproc
    from astropy.nddata import CCDData

    oscan, trim = header["BIASSEC"], header["TRIMSEC"]

    def ccd(data, head):
        return CCDData(data, unit="adu", meta=head)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bias_frames = [ccdproc.ccd_process(ccd(d, h), oscan=oscan, trim=trim, oscan_median=True) for d, h in biases]
        master_bias = ccdproc.combine(bias_frames, method="average", sigma_clip=True)
        dark_frames = [ccdproc.ccd_process(ccd(d, h), oscan=oscan, trim=trim, oscan_median=True,
                                           master_bias=master_bias) for d, h in darks]
        master_dark = ccdproc.combine(dark_frames, method="average", sigma_clip=True)
        flat_frames = [
            ccdproc.ccd_process(ccd(d, h), oscan=oscan, trim=trim, oscan_median=True, master_bias=master_bias,
                                dark_frame=master_dark, dark_exposure=DARK_EXPOSURE * u.s,
                                data_exposure=FLAT_EXPOSURE * u.s, dark_scale=True)
            for d, h in flats
        ]
        master_flat = ccdproc.combine(flat_frames, method="average", sigma_clip=True,
                                      scale=lambda a: 1.0 / np.median(a))
        reduced = ccdproc.ccd_process(
            ccd(light, header), oscan=oscan, trim=trim, oscan_median=True, master_bias=master_bias,
            dark_frame=master_dark, master_flat=master_flat, dark_exposure=DARK_EXPOSURE * u.s,
            data_exposure=header["EXPTIME"] * u.s, dark_scale=True,
        )
    return master_bias.data, master_dark.data, master_flat.data, reduced.data
