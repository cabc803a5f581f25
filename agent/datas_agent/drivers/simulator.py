"""A simulated mount, camera and filter wheel that image a seeded, repeatable sky.

The sky is cut into 1 deg x 1 deg cells in (RA, Dec); each cell's stars are drawn from a
generator seeded with the cell (and the backend's ``seed``), so the same pointing always shows
the same stars, on any machine. The observed target is added at its J2000 position with its
magnitude, so photometry has a known truth. Frames carry an exact TAN WCS and have Poisson
and read noise (``datas_pipeline.synthetic.fields``).

Options (``hardware.simulator``): ``seed``, ``width``, ``height`` (px), ``fwhm_px``,
``sky_e`` (sky electrons per pixel per second), ``zero_point`` (magnitude giving 1 e-/s),
``slew_s`` (seconds a slew takes), ``stars_per_deg2``, ``is_safe``.
"""
from __future__ import annotations

import time
import zlib
from datetime import UTC, datetime, timedelta

import numpy as np
from astropy.wcs import WCS
from datas_pipeline.synthetic.fields import STAR_DTYPE, expose, render_stars

from datas_agent.drivers.base import (
    JNOW,
    Backend,
    Camera,
    Conditions,
    Exposure,
    ExposureRequest,
    FilterWheel,
    Mount,
)
from datas_agent.errors import DriverError
from datas_agent.observability import from_mount_equinox

DEFAULT_FILTERS = ("B", "V", "R", "I", "L")
SATURATION_ADU = 65535


def sky_stars(ra_deg: float, dec_deg: float, radius_deg: float, seed: int,
              stars_per_deg2: float = 400.0, mag_range: tuple[float, float] = (8.0, 16.0)) -> np.ndarray:
    """Stars (``ra``, ``dec`` in degrees J2000, ``mag``) of the seeded sky within a box around a point."""
    dec_lo, dec_hi = max(dec_deg - radius_deg, -90.0), min(dec_deg + radius_deg, 90.0)
    # The widest RA extent is at the declination farthest from the equator.
    cos_dec = np.cos(np.radians(max(abs(dec_lo), abs(dec_hi))))
    half_ra = 180.0 if cos_dec * 180.0 <= radius_deg else radius_deg / cos_dec
    cells_dec = range(int(np.floor(dec_lo)), int(np.ceil(dec_hi)))
    ra_cells = range(int(np.floor(ra_deg - half_ra)), int(np.ceil(ra_deg + half_ra)))
    ra_cells_wrapped = sorted({c % 360 for c in ra_cells})
    chunks = []
    for cd in cells_dec:
        for cr in ra_cells_wrapped:
            rng = np.random.default_rng(zlib.crc32(f"{seed}:{cr}:{cd}".encode()))
            area = np.degrees(np.sin(np.radians(min(cd + 1, 90))) - np.sin(np.radians(max(cd, -90))))
            n = rng.poisson(stars_per_deg2 * max(area, 0.0))
            sin_lo, sin_hi = np.sin(np.radians(cd)), np.sin(np.radians(cd + 1))
            dec = np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi, n)))
            ra = rng.uniform(cr, cr + 1, n)
            # N(<m) ~ 10^(0.3 m): many faint stars, few bright ones.
            k = 0.3 * np.log(10.0)
            lo, hi = np.exp(k * mag_range[0]), np.exp(k * mag_range[1])
            mag = np.log(rng.uniform(lo, hi, n)) / k
            chunks.append(np.rec.fromarrays([ra, dec, mag], names="ra,dec,mag"))
    if not chunks:
        return np.rec.fromarrays([np.empty(0)] * 3, names="ra,dec,mag")
    return np.concatenate(chunks).view(np.recarray)


def tan_wcs(ra_deg: float, dec_deg: float, shape: tuple[int, int], scale_arcsec: float) -> WCS:
    """A north-up, east-left gnomonic WCS centred on (ra, dec) for an image of ``shape`` (ny, nx)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra_deg % 360.0, dec_deg]
    wcs.wcs.crpix = [(shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0]
    scale = scale_arcsec / 3600.0
    wcs.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    wcs.wcs.radesys = "ICRS"
    return wcs


class SimulatedMount(Mount):
    equinox = JNOW  # like most real mounts, so the loop's J2000 -> JNow conversion is exercised

    def __init__(self, name: str, slew_s: float) -> None:
        self.name = name
        self.slew_s = slew_s
        self._position = (0.0, 90.0)

    def slew_to(self, ra_deg: float, dec_deg: float) -> None:
        if not (-90.0 <= dec_deg <= 90.0):
            raise DriverError(f"{self.name}: declination {dec_deg} out of range")
        time.sleep(self.slew_s)
        self._position = (ra_deg % 360.0, dec_deg)

    def position(self) -> tuple[float, float]:
        return self._position


class SimulatedFilterWheel(FilterWheel):
    def __init__(self, name: str, filters: tuple[str, ...]) -> None:
        self.name = name
        self._names = list(filters)
        self.current = self._names[0]

    def names(self) -> list[str]:
        return list(self._names)

    def select(self, name: str) -> None:
        if name not in self._names:
            raise DriverError(f"{self.name}: no filter {name!r} (has {', '.join(self._names)})")
        self.current = name


class SimulatedCamera(Camera):
    def __init__(self, name: str, backend: SimulatorBackend) -> None:
        self.name = name
        self.backend = backend
        self.frames_taken = 0

    def expose(self, request: ExposureRequest) -> Exposure:
        b = self.backend
        started = datetime.now(UTC)
        clock = time.monotonic()
        shape = (b.height, b.width)
        mount = b.mount_device
        if mount is not None:
            ra, dec = from_mount_equinox(*mount.position(), started, mount.equinox)
        elif request.target_ra_deg is not None:
            ra, dec = request.target_ra_deg, request.target_dec_deg
        else:
            ra, dec = 0.0, 0.0
        wcs = tan_wcs(ra, dec, shape, b.scale_arcsec)
        rng = np.random.default_rng(zlib.crc32(f"{b.seed}:frame:{self.frames_taken}".encode()))
        self.frames_taken += 1
        stars = np.zeros(0, dtype=STAR_DTYPE)
        if request.light:
            radius = 0.75 * b.scale_arcsec * np.hypot(*shape) / 3600.0
            sky = sky_stars(ra, dec, radius, b.seed, b.stars_per_deg2)
            ras, decs, mags = list(sky.ra), list(sky.dec), list(sky.mag)
            if request.target_ra_deg is not None:
                ras.append(request.target_ra_deg)
                decs.append(request.target_dec_deg)
                mags.append(request.target_magnitude if request.target_magnitude is not None else 11.0)
            x, y = wcs.world_to_pixel_values(np.array(ras), np.array(decs))
            margin = 3 * b.fwhm_px
            keep = (x > -margin) & (x < shape[1] + margin) & (y > -margin) & (y < shape[0] + margin)
            stars = np.zeros(int(keep.sum()), dtype=STAR_DTYPE)
            stars["x"], stars["y"] = x[keep], y[keep]
            stars["flux"] = 10.0 ** (-0.4 * (np.array(mags)[keep] - b.zero_point)) * request.exposure_s
        electrons = render_stars(shape, stars, fwhm=b.fwhm_px) if len(stars) else np.zeros(shape)
        sky_level = b.sky_e * request.exposure_s if request.light else 0.0
        adu = expose(electrons, rng, sky=sky_level + 10.0 * request.exposure_s, read_noise=5.0,
                     gain=b.gain, bias=100.0)
        time.sleep(max(min(request.exposure_s, b.max_real_wait_s) - (time.monotonic() - clock), 0.0))
        # A frame that did not take real time is dated as if it had just ended, like a real one.
        started = min(started, datetime.now(UTC) - timedelta(seconds=request.exposure_s))
        header = {
            "INSTRUME": self.name, "GAIN": b.gain, "EGAIN": b.gain, "CCD-TEMP": -10.0, "XBINNING": 1, "YBINNING": 1,
            "PIXSIZE1": b.pixel_size_um, "PIXSIZE2": b.pixel_size_um, "SATURATE": SATURATION_ADU,
        }
        header.update(wcs.to_header(relax=False))
        return Exposure(data=np.clip(np.rint(adu), 0, SATURATION_ADU).astype(np.uint16), started_at=started,
                        exposure_s=request.exposure_s, header=header)


class SimulatorBackend(Backend):
    name = "simulator"

    def __init__(self, options, hardware, site) -> None:
        super().__init__(options, hardware, site)
        get = options.get
        self.seed = int(get("seed", 1))
        self.width, self.height = int(get("width", 512)), int(get("height", 512))
        self.fwhm_px = float(get("fwhm_px", 3.0))
        self.sky_e = float(get("sky_e", 50.0))
        self.zero_point = float(get("zero_point", 21.0))
        self.gain = float(get("gain", 1.5))
        self.slew_s = float(get("slew_s", 0.0))
        # Simulated exposures return at once unless a demo wants them to take real time.
        self.max_real_wait_s = float(get("real_time_s", 0.0))
        self.stars_per_deg2 = float(get("stars_per_deg2", 400.0))
        self.is_safe = bool(get("is_safe", True))
        self.pixel_size_um = hardware.pixel_size_um or 5.0
        self.scale_arcsec = hardware.pixel_scale_arcsec or 2.0
        self.mount_device: SimulatedMount | None = None

    def mount(self, device):
        self.mount_device = SimulatedMount(device or "Simulated mount", self.slew_s)
        return self.mount_device

    def camera(self, device):
        return SimulatedCamera(device or "Simulated camera", self)

    def filter_wheel(self, device):
        return SimulatedFilterWheel(device or "Simulated wheel", self.hardware.filters or DEFAULT_FILTERS)

    def conditions(self) -> Conditions:
        return Conditions(is_safe=self.is_safe, weather={"cloud_cover": 0.0, "humidity": 55.0})
