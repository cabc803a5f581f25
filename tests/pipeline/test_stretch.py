"""Stretches and preview files: the transfer functions, and files that read back bit for bit."""
import struct
import zlib

import numpy as np
import pytest
import tifffile
from datas_pipeline.display.stretch import (
    asinh_stretch,
    auto_stretch,
    mtf,
    quantise,
    render,
    save_display,
    thumbnail,
)
from datas_pipeline.errors import PipelineError
from datas_pipeline.synthetic.fields import star_field
from PIL import Image


def test_midtones_transfer_function_fixed_points():
    x = np.array([0.0, 0.1, 0.3, 1.0], np.float32)
    out = mtf(0.1, x)
    assert out[0] == 0.0 and out[3] == 1.0 and out[1] == pytest.approx(0.5)
    assert np.all(np.diff(mtf(0.2, np.linspace(0, 1, 50))) > 0)


def test_auto_stretch_puts_the_background_at_the_target():
    image, _ = star_field((256, 256), n_stars=80, seed=4)
    display = auto_stretch(image, target_background=0.25)
    assert display.min() >= 0.0 and display.max() <= 1.0
    assert np.median(display) == pytest.approx(0.25, abs=0.03)
    rgb = auto_stretch(np.stack([image, image * 0.5, image * 2.0]), linked=False)
    assert rgb.shape == (3, 256, 256)
    assert np.allclose(np.median(rgb, axis=(1, 2)), 0.25, atol=0.03)


def test_asinh_stretch_is_monotonic_and_bounded():
    image, _ = star_field((128, 128), n_stars=30, seed=5)
    display = asinh_stretch(image)
    flat = image.ravel()
    order = np.argsort(flat)
    assert np.all(np.diff(display.ravel()[order]) >= -1e-6)
    assert display.min() == 0.0 and display.max() == pytest.approx(1.0)


def _decode_png(data: bytes) -> np.ndarray:
    """A minimal PNG reader for the files we write (filter Sub, 8/16-bit, grey or RGB)."""
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    nx, ny, depth, colour = header[:4]
    channels = 3 if colour == 2 else 1
    bpp = channels * depth // 8
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(ny, -1)
    assert np.all(raw[:, 0] == 1)
    rows = raw[:, 1:].astype(np.int64)
    for i in range(bpp, rows.shape[1]):
        rows[:, i] = (rows[:, i] + rows[:, i - bpp]) & 0xFF
    rows = rows.astype(np.uint8)
    pixels = rows.view(">u2") if depth == 16 else rows
    return pixels.reshape(ny, nx, channels) if channels == 3 else pixels.reshape(ny, nx)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("colour", [False, True])
def test_png_reads_back_exactly(tmp_path, bits, colour):
    rng = np.random.default_rng(1)
    display = rng.uniform(0, 1, (3, 20, 30) if colour else (20, 30)).astype(np.float32)
    path = save_display(tmp_path / "out.png", display, bits=bits)
    expected = quantise(np.moveaxis(display, 0, -1) if colour else display, bits)[::-1]
    assert np.array_equal(_decode_png(path.read_bytes()), expected)
    if not (colour and bits == 16):       # Pillow cannot hold 16-bit RGB
        with Image.open(path) as png:
            assert np.array_equal(np.array(png).astype(np.int64), expected.astype(np.int64))


def test_jpeg_and_tiff(tmp_path):
    display = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)
    with Image.open(save_display(tmp_path / "out.jpg", display)) as jpg:
        assert jpg.size == (64, 48)
        assert np.abs(np.array(jpg).astype(int) - quantise(display, 8)[::-1]).max() <= 3
    tif = save_display(tmp_path / "out.tif", np.stack([display] * 3), bits=16, flip=False)
    assert np.array_equal(tifffile.imread(tif), quantise(np.stack([display] * 3, axis=-1), 16))
    with pytest.raises(PipelineError, match="JPEG holds 8 bits"):
        save_display(tmp_path / "x.jpg", display, bits=16)


def test_thumbnail_averages_blocks():
    image = np.arange(100 * 60, dtype=np.float32).reshape(100, 60)
    small = thumbnail(image, 25)
    assert max(small.shape) <= 25
    assert small[0, 0] == pytest.approx(image[:4, :4].mean())


def test_render_errors(tmp_path):
    image, _ = star_field((64, 64), n_stars=5, seed=1)
    with pytest.raises(PipelineError, match="unknown stretch"):
        render(image, tmp_path / "a.png", stretch="log")
    with pytest.raises(PipelineError, match="unknown image type"):
        render(image, tmp_path / "a.bmp")
    with pytest.raises(PipelineError, match="bit depth"):
        render(image, tmp_path / "a.png", bits=12)
