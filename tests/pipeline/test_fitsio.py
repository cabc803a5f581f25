import numpy as np
import pytest
from astropy.io import fits

from pipeline.errors import FrameReadError
from pipeline.fitsio import read_frame, write_frame


def test_round_trip_keeps_data_and_header(tmp_path):
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    header = fits.Header({"EXPTIME": 30.0, "FILTER": "V"})
    path = write_frame(tmp_path / "a.fits", data, header)
    frame = read_frame(path)
    assert np.array_equal(frame.data, data)
    assert frame.header["FILTER"] == "V" and frame.header["EXPTIME"] == 30.0


def test_reads_first_image_extension(shared_data):
    frame = read_frame(shared_data / "ccdproc" / "science-mef.fits")
    assert frame.data.ndim == 2


@pytest.mark.parametrize("content", [b"", b"not a fits file at all" * 10])
def test_not_fits_is_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.fits"
    path.write_bytes(content)
    with pytest.raises(FrameReadError, match="bad.fits"):
        read_frame(path)


def test_missing_file(tmp_path):
    with pytest.raises(FrameReadError, match="no such file"):
        read_frame(tmp_path / "nope.fits")
