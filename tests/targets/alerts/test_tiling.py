"""A GBM-sized error circle becomes ranked tiles enclosing at least 90 % of its probability."""
import numpy as np
import pytest

from targets.alerts.tiling import sigma_for, tile_localisation
from targets.sky import angular_separation_deg


def sample_gaussian(ra, dec, sigma, n, rng):
    """Points drawn from a circular 2-D Gaussian on the sky (exact bearing/distance, no projection)."""
    distance = np.radians(sigma) * np.sqrt(-2 * np.log(rng.random(n)))
    bearing = rng.random(n) * 2 * np.pi
    d0, a0 = np.radians(dec), np.radians(ra)
    lat = np.arcsin(np.sin(d0) * np.cos(distance) + np.cos(d0) * np.sin(distance) * np.cos(bearing))
    lon = a0 + np.arctan2(np.sin(bearing) * np.sin(distance) * np.cos(d0), np.cos(distance) - np.sin(d0) * np.sin(lat))
    return np.degrees(lon) % 360, np.degrees(lat)


def inside_square(ra, dec, tile, fov):
    """Whether points fall in the tile's fov x fov field (offsets along the tile's own axes)."""
    east = np.cos(np.radians(dec)) * np.sin(np.radians(ra - tile.ra_deg))
    north = (np.cos(np.radians(tile.dec_deg)) * np.sin(np.radians(dec))
             - np.sin(np.radians(tile.dec_deg)) * np.cos(np.radians(dec)) * np.cos(np.radians(ra - tile.ra_deg)))
    near = angular_separation_deg(ra, dec, tile.ra_deg, tile.dec_deg) < fov
    return near & (np.abs(np.degrees(east)) <= fov / 2 + 1e-9) & (np.abs(np.degrees(north)) <= fov / 2 + 1e-9)


@pytest.mark.parametrize(("ra", "dec"), [(136.917, -78.117), (359.5, 3.0), (10.0, 30.0)])
def test_gbm_circle_tiles_cover_ninety_percent(ra, dec):
    radius, containment, fov = 8.32, 0.68, 2.0  # Fermi GBM flight position: 68 % in 8.32 deg
    tiling = tile_localisation(ra, dec, radius, fov, containment=containment, max_tiles=1000)
    assert tiling.complete and tiling.coverage >= 0.9
    probabilities = [t.probability for t in tiling.tiles]
    assert probabilities == sorted(probabilities, reverse=True)
    # Independent truth: draws from the same Gaussian fall inside the tiles' fields >= 90 % of the time.
    rng = np.random.default_rng(14)
    sample_ra, sample_dec = sample_gaussian(ra, dec, sigma_for(radius, containment), 50000, rng)
    covered = np.zeros(sample_ra.size, bool)
    for tile in tiling.tiles:
        covered |= inside_square(sample_ra, sample_dec, tile, fov)
    assert covered.mean() >= 0.9
    # and the tiles are not wasteful: about the area of the 90 % circle (sigma * 2.146) over the tile area
    area_90 = np.pi * (sigma_for(radius, containment) * 2.146) ** 2
    assert len(tiling.tiles) < 1.5 * area_90 / fov**2


def test_the_cap_on_tiles_is_reported():
    tiling = tile_localisation(10.0, 30.0, 8.32, 1.0, containment=0.68, max_tiles=50)
    assert len(tiling.tiles) == 50 and not tiling.complete and tiling.coverage < 0.9


def healpix_notice(samples, ra, dec, sigma, nside=64):
    """The GBM sample carrying a base64 HEALPix map (NESTED) of a Gaussian at (ra, dec)."""
    import base64
    import io
    import json

    import astropy.units as u
    from astropy.io import fits
    from astropy_healpix import HEALPix

    healpix = HEALPix(nside=nside, order="nested")
    lon, lat = healpix.healpix_to_lonlat(np.arange(healpix.npix))
    distance = angular_separation_deg(lon.to_value(u.deg), lat.to_value(u.deg), ra, dec)
    probability = np.exp(-0.5 * (distance / sigma) ** 2)
    probability /= probability.sum()
    table = fits.BinTableHDU.from_columns([fits.Column(name="PROB", format="D", array=probability)])
    table.header.update(ORDERING="NESTED", NSIDE=nside, PIXTYPE="HEALPIX")
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(out)
    notice = json.loads((samples / "gcn_kafka_fermi_gbm_trigger.flight1.example.json").read_bytes())
    notice |= {"ra": ra, "dec": dec, "healpix_file": base64.b64encode(out.getvalue()).decode()}
    return json.dumps(notice).encode(), probability, healpix


def test_healpix_map_in_a_gcn_notice_becomes_tiles(samples):
    import astropy.units as u

    from targets.alerts.sources.gcn import GcnJsonSource
    data, probability, healpix = healpix_notice(samples, 200.0, -30.0, 3.0)
    [alert] = GcnJsonSource().parse(data)
    assert alert.skymap.nside == 64 and alert.skymap.nested
    fov = 2.0
    tiling = tile_localisation(alert.ra_deg, alert.dec_deg, alert.error_radius_deg, fov,
                               skymap=(alert.skymap.probability, alert.skymap.nside, alert.skymap.nested))
    assert tiling.complete
    # truth: the map's own probability inside the tiles' fields, pixel by pixel
    lon, lat = healpix.healpix_to_lonlat(np.arange(healpix.npix))
    covered = np.zeros(healpix.npix, bool)
    for tile in tiling.tiles:
        covered |= inside_square(lon.to_value(u.deg), lat.to_value(u.deg), tile, fov)
    assert probability[covered].sum() >= 0.9, probability[covered].sum()
    assert tiling.tiles[0].probability == max(t.probability for t in tiling.tiles)
