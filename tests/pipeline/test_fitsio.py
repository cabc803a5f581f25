"""FITS I/O: every pixel type, compressed and multi-extension files, Bayer mosaics, bands."""
import numpy as np
import pytest
from astropy.io import fits
from datas_pipeline.errors import FrameReadError, PipelineError
from datas_pipeline.io.fits import (
    BAYER_PATTERNS,
    bayer_masks,
    bayer_pattern,
    debayer_bilinear,
    debayer_superpixel,
    frame_shape,
    iter_row_bands,
    read_frame,
    read_mef,
    write_frame,
)


def test_round_trip_keeps_data_and_header(tmp_path):
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    header = fits.Header({"EXPTIME": 30.0, "FILTER": "V"})
    path = write_frame(tmp_path / "a.fits", data, header)
    frame = read_frame(path)
    assert np.array_equal(frame.data, data)
    assert frame.header["FILTER"] == "V" and frame.header["EXPTIME"] == 30.0


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64])
def test_every_pixel_type_reads_as_float32_with_exact_values(tmp_path, dtype):
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    hi = min(info.max, 2**24) if info else 1e6
    lo = max(info.min, -(2**24)) if info else -1e6
    values = np.linspace(lo, hi, 60).reshape(6, 10)
    path = write_frame(tmp_path / "x.fits", values, dtype=dtype)
    frame = read_frame(path)
    assert frame.data.dtype == np.float32
    expected = np.clip(np.rint(values), lo, hi) if info else values
    assert np.allclose(frame.data, expected.astype(np.float32), rtol=0, atol=0)
    if dtype is np.uint16:
        assert fits.getheader(path)["BZERO"] == 32768


def test_scaled_integers_read_without_memmap_errors(shared_data):
    # int16 with a non-integral BSCALE, which astropy refuses to memory-map.
    frame = read_frame(shared_data / "sep" / "image.fits")
    assert frame.data.shape == (256, 256) and frame.data.min() > 3700


def test_tile_compressed_fz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 65535, (64, 80)).astype(np.uint16)
    path = write_frame(tmp_path / "raw.fits.fz", raw, fits.Header({"IMAGETYP": "LIGHT"}), dtype=np.uint16)
    frame = read_frame(path)
    assert np.array_equal(frame.data, raw.astype(np.float32))
    assert frame.header["IMAGETYP"] == "LIGHT"
    floats = rng.normal(0, 1, (32, 32)).astype(np.float32)
    assert np.array_equal(read_frame(write_frame(tmp_path / "f.fz", floats)).data, floats)
    bands = [band for _, band in iter_row_bands(path, band_rows=10)]
    assert np.array_equal(np.vstack(bands), frame.data)


def test_multi_extension_files_inherit_the_primary_header(tmp_path, shared_data):
    frames = read_mef(shared_data / "ccdproc" / "science-mef.fits")
    assert len(frames) == 3 and all(f.data.shape == (10, 10) for f in frames)
    primary = fits.PrimaryHDU(header=fits.Header({"DATE-OBS": "2024-01-02T03:04:05", "EXPTIME": 60.0}))
    ext = fits.ImageHDU(np.ones((4, 5), np.float32), name="SCI")
    ext.header["EXPTIME"] = 30.0  # the extension's own value wins
    fits.HDUList([primary, ext]).writeto(tmp_path / "mef.fits")
    frame = read_frame(tmp_path / "mef.fits", hdu="SCI")
    assert frame.header["DATE-OBS"] == "2024-01-02T03:04:05" and frame.header["EXPTIME"] == 30.0
    with pytest.raises(FrameReadError, match="no HDU 'NOPE'|there is no HDU"):
        read_frame(tmp_path / "mef.fits", hdu="NOPE")
    with pytest.raises(FrameReadError, match="holds no image"):
        read_frame(tmp_path / "mef.fits", hdu=0)


def test_colour_planes_and_wrong_shapes(tmp_path):
    rgb = np.random.default_rng(1).random((3, 8, 9)).astype(np.float32)
    assert read_frame(write_frame(tmp_path / "rgb.fits", rgb)).data.shape == (3, 8, 9)
    assert frame_shape(tmp_path / "rgb.fits") == (3, 8, 9)
    write_frame(tmp_path / "cube.fits", np.zeros((5, 8, 9)))
    with pytest.raises(FrameReadError, match="3 colour planes"):
        read_frame(tmp_path / "cube.fits")
    fits.PrimaryHDU(np.zeros(10)).writeto(tmp_path / "spectrum.fits")
    with pytest.raises(FrameReadError, match="no image data"):
        read_frame(tmp_path / "spectrum.fits")


def test_truncated_file_is_a_clear_error(tmp_path):
    path = write_frame(tmp_path / "full.fits", np.ones((200, 200), np.float32))
    cut = tmp_path / "cut.fits"
    cut.write_bytes(path.read_bytes()[: 2880 * 3])
    with pytest.raises(FrameReadError, match="cut.fits"):
        read_frame(cut)


@pytest.mark.parametrize("content", [b"", b"not a fits file at all" * 10])
def test_not_fits_is_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.fits"
    path.write_bytes(content)
    with pytest.raises(FrameReadError, match="bad.fits"):
        read_frame(path)


def test_missing_file(tmp_path):
    with pytest.raises(FrameReadError, match="no such file"):
        read_frame(tmp_path / "nope.fits")


def test_row_bands_stream_the_same_pixels(tmp_path):
    data = np.random.default_rng(2).integers(0, 60000, (101, 37)).astype(np.uint16)
    path = write_frame(tmp_path / "big.fits", data, dtype=np.uint16)
    pieces = list(iter_row_bands(path, band_rows=16))
    assert [rows.start for rows, _ in pieces] == list(range(0, 101, 16))
    assert np.array_equal(np.vstack([b for _, b in pieces]), data.astype(np.float32))


def _mosaic(scene: np.ndarray, pattern: str) -> np.ndarray:
    """Sample an RGB scene (3, ny, nx) through a colour-filter array."""
    masks = bayer_masks(scene.shape[1:], pattern)
    return sum(np.where(masks[c], scene[i], 0.0) for i, c in enumerate("RGB"))


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_debayer_recovers_the_scene_for_every_pattern(tmp_path, pattern):
    yy, xx = np.mgrid[0:40, 0:48]
    # A smooth colour scene: bilinear interpolation is exact on planes.
    scene = np.stack([100 + 2 * xx, 300 + yy + xx, 50 + 3 * yy]).astype(np.float64)
    header = fits.Header({"BAYERPAT": pattern})
    path = write_frame(tmp_path / "osc.fits", _mosaic(scene, pattern), header, dtype=np.uint16)
    raw = read_frame(path)
    assert raw.data.ndim == 2 and raw.bayer_pattern == pattern
    rgb = read_frame(path, debayer=True).data
    assert rgb.shape == (3, 40, 48)
    inner = (slice(None), slice(2, -2), slice(2, -2))
    assert np.allclose(rgb[inner], scene[inner], atol=1e-3)
    half = debayer_superpixel(raw.data, pattern)
    assert half.shape == (3, 20, 24)
    assert np.allclose(half[0], scene[0][masks_cell(pattern, "R")], atol=1e-3)


def masks_cell(pattern: str, colour: str) -> tuple[slice, slice]:
    i = pattern.index(colour)
    return slice(i // 2, None, 2), slice(i % 2, None, 2)


def test_bayer_offsets_shift_the_pattern_and_unknown_patterns_are_refused():
    assert bayer_pattern(fits.Header({"BAYERPAT": "RGGB", "XBAYROFF": 1})) == "GRBG"
    assert bayer_pattern(fits.Header({"BAYERPAT": "RGGB", "YBAYROFF": 1})) == "GBRG"
    assert bayer_pattern(fits.Header({"BAYERPAT": "RGGB", "XBAYROFF": 1, "YBAYROFF": 1})) == "BGGR"
    assert bayer_pattern(fits.Header({"BAYERPAT": "none"})) is None
    uniform = np.full((10, 10), 7.0)
    assert np.allclose(debayer_bilinear(uniform, "GBRG"), 7.0)
    with pytest.raises(PipelineError, match="unknown Bayer pattern"):
        debayer_bilinear(uniform, "RGBG")


def test_read_header_is_the_image_hdus_merged_header(tmp_path):
    from datas_pipeline.io.fits import read_header

    image = fits.ImageHDU(np.zeros((4, 5), np.float32), header=fits.Header({"FILTER": "Ha", "INHERIT": True}))
    path = tmp_path / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({"EXPTIME": 120.0})), image]).writeto(path)
    header = read_header(path)
    assert header["FILTER"] == "Ha" and header["EXPTIME"] == 120.0 and header["NAXIS2"] == 4
    fz = write_frame(tmp_path / "c.fits.fz", np.ones((6, 7), np.float32), fits.Header({"FILTER": "R"}))
    header = read_header(fz)
    assert header["FILTER"] == "R" and (header["NAXIS1"], header["NAXIS2"]) == (7, 6)
    with pytest.raises(FrameReadError, match="no such file"):
        read_header(tmp_path / "none.fits")


def test_write_frame_to_an_unwritable_path_is_a_pipeline_error(tmp_path):
    blocker = tmp_path / "a.fits"
    blocker.write_text("a file, not a folder")
    with pytest.raises(PipelineError, match="cannot write"):
        write_frame(blocker / "x.fits", np.zeros((3, 3), np.float32))


def test_is_fits_path_is_case_blind_and_knows_fz():
    from datas_pipeline.io.fits import is_fits_path

    assert all(is_fits_path(n) for n in ("A1.FIT", "a2.fits.fz", "a3.fts", "b.Fits"))
    assert not any(is_fits_path(n) for n in ("notes.txt", "a.png", "fits", "a.fits.gz"))


def test_debayer_bilinear_works_in_float32():
    import tracemalloc

    mosaic = np.random.default_rng(2).uniform(0, 60000, (1000, 1000)).astype(np.uint16)
    tracemalloc.start()
    rgb = debayer_bilinear(mosaic, "RGGB")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rgb.dtype == np.float32 and rgb.shape == (3, 1000, 1000)
    assert rgb[0, 0, 0] == mosaic[0, 0] and rgb[2, 1, 1] == mosaic[1, 1]
    # The float32 output (12 MB) and a few float32 planes; float64 planes took twice that.
    assert peak < 3.5 * rgb.nbytes, peak / rgb.nbytes
