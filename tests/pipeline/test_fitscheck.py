"""datas_pipeline.io.fitscheck: complete FITS images pass; everything else is named for what it is."""
import numpy as np
import pytest
from astropy.io import fits
from datas_pipeline.errors import FrameReadError
from datas_pipeline.io.fitscheck import check_fits_file, describe_signature


def write(path, hdus):
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def test_plain_compressed_and_multi_extension_images_pass(tmp_path):
    data = np.arange(60 * 70, dtype=np.uint16).reshape(60, 70)
    plain = check_fits_file(write(tmp_path / "a.fits", [fits.PrimaryHDU(data)]))
    assert (plain.shape, plain.bitpix, plain.compressed, plain.hdus) == ((60, 70), 16, False, 1)
    packed = check_fits_file(write(tmp_path / "a.fz", [fits.PrimaryHDU(), fits.CompImageHDU(data)]))
    assert (packed.shape, packed.bitpix, packed.compressed) == ((60, 70), 16, True)
    mef = check_fits_file(write(tmp_path / "m.fits", [fits.PrimaryHDU(header=fits.Header({"EXPTIME": 5.0})),
                                                      fits.ImageHDU(data.astype(np.float32)),
                                                      fits.ImageHDU(data.astype(np.float32))]))
    assert mef.hdus == 2 and mef.header["EXPTIME"] == 5.0 and mef.finite_fraction == 1.0
    colour = check_fits_file(write(tmp_path / "c.fits", [fits.PrimaryHDU(np.ones((3, 20, 30), np.float32))]))
    assert colour.shape == (3, 20, 30)


def test_truncation_is_found_wherever_it_cuts(tmp_path):
    data = np.zeros((100, 100), np.float32)
    whole = write(tmp_path / "w.fits", [fits.PrimaryHDU(data), fits.ImageHDU(data)]).read_bytes()
    for cut, expected in ((len(whole) - 5000, "HDU 1 declares data"), (2880 + 1000, "HDU 0 declares data"),
                          (2880 + 40000 + 1000, "HDU 1")):
        path = tmp_path / "cut.fits"
        path.write_bytes(whole[:cut])
        with pytest.raises(FrameReadError, match=expected):
            check_fits_file(path)
    header_only = tmp_path / "h.fits"
    header_only.write_bytes(whole[:2880 + 40000 + 2880 - 80 * 10])
    with pytest.raises(FrameReadError):
        check_fits_file(header_only)


def test_missing_final_padding_is_truncation(tmp_path):
    whole = write(tmp_path / "p.fits", [fits.PrimaryHDU(np.ones((10, 10), np.int16))]).read_bytes()
    trimmed = tmp_path / "t.fits"
    trimmed.write_bytes(whole[:2880 + 200])  # the data is whole; only the block padding is gone
    with pytest.raises(FrameReadError, match="padding FITS requires"):
        check_fits_file(trimmed)


@pytest.mark.parametrize(("head", "words"), [
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff\xe0", "JPEG"), (b"II*\x00", "TIFF"), (b"\x1f\x8b\x08", "gzip"),
    (b"XISF0100", "XISF"), (b"%PDF-1.7", "PDF"), (b"SIMPLE  =                    F", "non-conforming"),
    (b"", "empty"), (b"random bytes", "SIMPLE  ="),
])
def test_other_formats_are_named(head, words):
    assert words in describe_signature(head)


def test_fits_without_image_and_nan_images(tmp_path):
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=np.ones(4))])
    with pytest.raises(FrameReadError, match="no image data"):
        check_fits_file(write(tmp_path / "t.fits", [fits.PrimaryHDU(), table]))
    nan = np.full((20, 20), np.nan, np.float32)
    nan[:5] = 1.0
    assert check_fits_file(write(tmp_path / "n.fits", [fits.PrimaryHDU(nan)])).finite_fraction == 0.25


@pytest.mark.parametrize("card", ["NAXIS1  = 'abc'", "BITPIX  = 'sixteen'"])
def test_a_structural_keyword_that_is_not_a_number_is_refused(tmp_path, card):
    """Found in review: NAXIS1 = 'abc' escaped as a ValueError (a 500 at the upload endpoint)."""
    path = tmp_path / "bad.fits"
    fits.PrimaryHDU(np.zeros((4, 4), np.int16)).writeto(path)
    raw = bytearray(path.read_bytes())
    name = card.split("=")[0].strip().encode()
    start = next(i for i in range(0, 2880, 80) if raw[i:i + 8].rstrip() == name)
    raw[start:start + 80] = card.ljust(80).encode()
    path.write_bytes(bytes(raw))
    with pytest.raises(FrameReadError, match="not a whole number"):
        check_fits_file(path)


def with_card(tmp_path, card: str, shape=(4, 4)):
    """A small FITS file with one header card replaced (or added before END) as written."""
    path = tmp_path / "odd.fits"
    fits.PrimaryHDU(np.zeros(shape, np.int16)).writeto(path, overwrite=True)
    raw = bytearray(path.read_bytes())
    name = card.split("=")[0].strip().encode()
    existing = [i for i in range(0, 2880, 80) if raw[i:i + 8].rstrip() == name]
    at = existing[0] if existing else next(i for i in range(0, 2880, 80) if raw[i:i + 8].rstrip() == b"END")
    raw[at:at + 80] = card.ljust(80).encode()
    if not existing:
        raw[at + 80:at + 160] = b"END".ljust(80)
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize(("card", "words"), [
    ("NAXIS1  =                  -64", "NAXIS1 = -64 is negative"),
    ("BITPIX  =                   12", "BITPIX = 12 is not one FITS allows"),
    ("NAXIS   =                  999", "the NAXIS3 keyword is missing"),
    ("NAXIS   =                 1000", "NAXIS = 1000 is outside 0..999"),
    ("BSCALE  = 'x'", "BSCALE = 'x' is not a finite number"),
])
def test_impossible_structure_is_named_by_its_keyword(tmp_path, card, words):
    """From fuzzing the upload endpoint: NAXIS1 = -64 was a 500 (a negative seek); BITPIX 12 and
    NAXIS 999 were reported as a missing END card; a bad BSCALE as a raw numpy message."""
    with pytest.raises(FrameReadError, match=words):
        check_fits_file(with_card(tmp_path, card))
