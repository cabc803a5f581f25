"""Walking a share, reading headers without pixels, and telling lights from darks, flats and biases."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from astropy.io import fits
from datas_pipeline.archive.classify import UnclassifiedFrame, classify_frame, kind_from_names
from datas_pipeline.archive.scan import is_share_fits, scan_file, walk_share
from datas_pipeline.errors import FrameReadError
from datas_pipeline.io.headers import normalise_header


@pytest.mark.parametrize("word, kind", [
    ("Light Frame", "light"), ("LIGHT", "light"), ("Object", "light"), ("science", "light"),
    ("Dark Frame", "dark"), ("DARK", "dark"), ("Master Dark", "dark"), ("Flat Field", "flat"), ("FLAT", "flat"),
    ("SkyFlat", "flat"), ("Bias Frame", "bias"), ("ZERO", "bias"), ("MASTER BIAS", "bias"), ("offset", "bias"),
])
def test_imagetyp_spellings(word, kind):
    info = normalise_header(fits.Header({"IMAGETYP": word, "EXPTIME": 1.0}))
    result = classify_frame(info, "/nas/x/frame_001.fits", word)
    assert result.kind == kind
    assert word in result.reason


@pytest.mark.parametrize("path, kind", [
    ("/nas/2025/Darks/300s/frame_1.fits", "dark"), ("/nas/calib/BIAS_0001.fit", "bias"),
    ("/nas/M42/Flats/Ha/img.fits", "flat"), ("/nas/M42/Lights/img.fits", "light"),
    ("/nas/flat_darks/img.fits", "dark"),
])
def test_names_decide_without_imagetyp(path, kind):
    info = normalise_header(fits.Header({"EXPTIME": 10.0}))
    assert kind_from_names(path)[0] == kind
    assert classify_frame(info, path).kind == kind


def test_heuristics_after_names():
    zero = normalise_header(fits.Header({"EXPTIME": 0.0}))
    assert classify_frame(zero, "/nas/x/img_1.fits").kind == "bias"
    pointed = normalise_header(fits.Header({"EXPTIME": 60.0, "RA": 10.0, "DEC": 20.0}))
    assert classify_frame(pointed, "/nas/x/img_1.fits").kind == "light"
    with pytest.raises(UnclassifiedFrame, match="write IMAGETYP"):
        classify_frame(normalise_header(fits.Header({"EXPTIME": 60.0})), "/nas/x/img_1.fits")


def _fits(path, header=None, shape=(16, 24)):
    hdu = fits.PrimaryHDU(np.arange(np.prod(shape), dtype=np.uint16).reshape(shape), header=header)
    hdu.header["IMAGETYP"] = "LIGHT"
    hdu.writeto(path)
    return path


def test_walk_finds_every_suffix_in_any_case(tmp_path):
    for name in ("a.fits", "b.FIT", "c.fts", "d.fits.fz", "e.fits.gz", "f.FITS.GZ", "g.jpg", ".h.fits", "i.xisf"):
        (tmp_path / "night" / "sub").mkdir(parents=True, exist_ok=True)
        (tmp_path / "night" / "sub" / name).write_bytes(b"")
    (tmp_path / ".snapshot").mkdir()
    (tmp_path / ".snapshot" / "old.fits").write_bytes(b"")
    found = sorted(p.name for p in walk_share([tmp_path]))
    assert found == ["a.fits", "b.FIT", "c.fts", "d.fits.fz", "e.fits.gz", "f.FITS.GZ"]
    assert is_share_fits("X.FTS") and not is_share_fits("x.fits.bak")


def test_scan_reads_header_and_hash_of_plain_gzip_and_fz(tmp_path):
    plain = _fits(tmp_path / "a.fits", fits.Header({"EXPTIME": 5.0, "FILTER": "Ha"}))
    packed = tmp_path / "a.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    tiled = tmp_path / "a.fits.fz"
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({"EXPTIME": 5.0, "FILTER": "Ha"})),
                  fits.CompImageHDU(np.ones((16, 24), dtype=np.uint16))]).writeto(tiled)
    import hashlib

    for path in (plain, packed, tiled):
        scanned = scan_file(path)
        assert scanned.header["FILTER"] == "Ha" and scanned.header["EXPTIME"] == 5.0
        assert scanned.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert scan_file(plain).header["NAXIS1"] == 24


def test_scan_refuses_bad_files_with_reasons(tmp_path):
    good = _fits(tmp_path / "good.fits")
    (tmp_path / "cut.fits").write_bytes(good.read_bytes()[:3000])
    (tmp_path / "png.fits").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (tmp_path / "empty.fits").write_bytes(b"")
    (tmp_path / "bad.fits.gz").write_bytes(b"\x1f\x8bnot really")
    for name, words in (("cut.fits", "truncated"), ("png.fits", "PNG"), ("empty.fits", "empty"),
                        ("bad.fits.gz", "gzip")):
        with pytest.raises(FrameReadError, match=words):
            scan_file(tmp_path / name)
