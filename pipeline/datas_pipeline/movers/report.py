"""A self-contained HTML report of a mover search, and the animated GIFs per candidate.

``report/index.html`` embeds every image as a ``data:`` URI (no outside assets, no
scripts): the summary, the rejected frames, a map of all tracks over the stack, and per
candidate an object-centric GIF (the crop follows the mover, stars stream past), a
star-centric GIF (the crop stays on the sky, the mover crosses it, its position ringed),
the sub-stack along the motion, rate and position angle, and the positions table. Images
are shown as in DS9, row 0 at the bottom. The GIFs are also written next to the page.
"""
from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from datas_pipeline.display.stretch import auto_stretch, thumbnail
from datas_pipeline.movers.search import MoverResult, Track
from datas_pipeline.stacking.combine import FrameSet

MARK = (255, 60, 60)
STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:1100px}table{border-collapse:collapse;"
         "font-size:90%}td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}"
         "img{image-rendering:pixelated;margin:4px;border:1px solid #888}.c{margin-bottom:2em}")


def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _to_8bit(display: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(display, 0, 1) * 255).astype(np.uint8)[::-1]  # row 0 at the bottom


def _stretch_crop(crop: np.ndarray, lo: float, hi: float) -> np.ndarray:
    x = np.clip((crop - lo) / max(hi - lo, 1e-6), 0, 1)
    return np.arcsinh(x / 0.1) / np.arcsinh(10.0)


def _crop(fs: FrameSet, k: int, level: float, cx: float, cy: float, half: int) -> np.ndarray:
    """A (2 half + 1)^2 crop of frame k around (cx, cy), sky-subtracted, zero outside the frame."""
    ny, nx = fs.shape
    size = 2 * half + 1
    out = np.zeros((size, size), np.float32)
    x0, y0 = int(round(cx)) - half, int(round(cy)) - half
    r0, r1, c0, c1 = max(0, y0), min(ny, y0 + size), max(0, x0), min(nx, x0 + size)
    if r1 > r0 and c1 > c0:
        out[r0 - y0:r1 - y0, c0 - x0:c1 - x0] = fs.rows(k, r0, r1)[:, c0:c1] - level
    return np.nan_to_num(out)


def _gif(images: list[Image.Image], duration_ms: int) -> bytes:
    buffer = io.BytesIO()
    paletted = [im.convert("P", palette=Image.Palette.ADAPTIVE, colors=64) for im in images]
    paletted[0].save(buffer, format="GIF", save_all=True, append_images=paletted[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _ring(draw: ImageDraw.ImageDraw, x: float, y: float, r: float) -> None:
    draw.ellipse([x - r, y - r, x + r, y + r], outline=MARK)


def candidate_images(fs: FrameSet, track: Track, levels: np.ndarray, fwhm: float, zoom: int = 4,
                     duration_ms: int = 300) -> dict[str, bytes]:
    """Object-centric GIF, star-centric GIF and the sub-stack PNG of one mover."""
    pos = track.positions
    half = int(max(8, 4 * fwhm))
    obj = np.array([_crop(fs, p["frame"], levels[p["frame"]], p["x"], p["y"], half) for p in pos])
    stack = np.median(obj, axis=0)
    lo, hi = float(np.percentile(stack, 5)), float(np.percentile(stack, 99.7))
    hi = max(hi, lo + 5 * float(np.std(stack)))
    size = (2 * half + 1) * zoom
    object_frames = []
    for crop in obj:
        im = Image.fromarray(_to_8bit(_stretch_crop(crop, lo, hi))).resize((size, size), Image.NEAREST).convert("RGB")
        _ring(ImageDraw.Draw(im), size / 2, size / 2, 2.0 * fwhm * zoom)
        object_frames.append(im)
    xs, ys = np.array([p["x"] for p in pos]), np.array([p["y"] for p in pos])
    cx, cy = 0.5 * (xs.min() + xs.max()), 0.5 * (ys.min() + ys.max())
    span = int(min(200, max(half, 0.5 * max(np.ptp(xs), np.ptp(ys)) + 3 * fwhm)))
    star_zoom = max(1, min(zoom, 400 // (2 * span + 1)))
    side = (2 * span + 1) * star_zoom
    star_frames = []
    for p in pos:
        crop = _crop(fs, p["frame"], levels[p["frame"]], cx, cy, span)
        im = Image.fromarray(_to_8bit(_stretch_crop(crop, lo, hi))).resize((side, side), Image.NEAREST).convert("RGB")
        draw = ImageDraw.Draw(im)
        # Display coordinates: x right, y flipped (row 0 at the bottom).
        def to_display(x, y):
            return ((x - (round(cx) - span) + 0.5) * star_zoom, side - (y - (round(cy) - span) + 0.5) * star_zoom)
        draw.line([to_display(xs[0], ys[0]), to_display(xs[-1], ys[-1])], fill=(90, 160, 255))
        _ring(draw, *to_display(p["x"], p["y"]), 2.0 * fwhm * star_zoom)
        star_frames.append(im)
    sub = Image.fromarray(_to_8bit(_stretch_crop(stack, lo, hi))).resize((size, size), Image.NEAREST)
    return {"object": _gif(object_frames, duration_ms), "star": _gif(star_frames, duration_ms), "substack": _png(sub)}


def track_map(result: MoverResult, max_side: int = 1000) -> bytes:
    """PNG of the stack with every track drawn (movers red, streaks blue), labelled."""
    ny, nx = result.shape
    small = thumbnail(result.stack, max_side)
    k = nx / small.shape[1]
    im = Image.fromarray(_to_8bit(auto_stretch(small))).convert("RGB")
    draw = ImageDraw.Draw(im)
    h = im.size[1]

    def to_display(x, y):
        return ((x + 0.5) / k, h - (y + 0.5) / k)

    for i, tr in enumerate(result.tracks):
        pts = [to_display(p["x"], p["y"]) for p in tr.positions]
        if len(pts) > 1:
            draw.line([pts[0], pts[-1]], fill=MARK, width=2)
        if pts:
            _ring(draw, *pts[0], 6)
            draw.text((pts[0][0] + 7, pts[0][1] - 7), f"M{i + 1}", fill=MARK)
    for i, s in enumerate(result.streaks):
        draw.line([to_display(s.x0, s.y0), to_display(s.x1, s.y1)], fill=(90, 160, 255), width=2)
        draw.text(to_display(s.x, s.y), f"S{i + 1}", fill=(90, 160, 255))
    return _png(im)


def _table(rows: list[list], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}" if abs(value) >= 100 else f"{value:.3f}"
    return str(value)


def write_report(folder: str | Path, result: MoverResult, frames: Sequence, max_candidates: int = 50) -> Path:
    """Write ``folder/index.html`` and the candidates' GIFs; return the page's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fs = FrameSet(list(frames))
    levels = np.array([r["sky_adu"] for r in result.frames])
    fwhm = float(result.parameters["fwhm_px"])
    p = result.parameters
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Moving objects</title><style>{STYLE}</style>"
             "</head><body><h1>Moving objects</h1>"]
    summary = [["frames", p["frames"]], ["frames used", p["frames_used"]], ["movers", len(result.tracks)],
               ["streaks", len(result.streaks)], ["FWHM (px)", fwhm], ["registration jitter (px)", p["jitter_px"]],
               ["times from", p["time_source"]], ["cadence (s)", p["cadence_s"]],
               ["score threshold (SNR)", p["score_threshold"]], ["run time (s)", result.timings.get("total")]]
    parts.append("<h2>Summary</h2>" + _table(summary, ["", "value"]))
    rejected = [[r["file"], r["reason"]] for r in result.frames if not r["used"]]
    parts.append("<h2>Rejected frames</h2>" + (_table(rejected, ["file", "reason"]) if rejected else "<p>none</p>"))
    parts.append(f"<h2>Tracks over the stack</h2><img alt='track map' src='{_uri(track_map(result), 'image/png')}'>")
    if result.streaks:
        rows = [[f"S{i + 1}", result.names[s.frame], s.x, s.y, s.angle_deg, s.length_px, s.snr]
                for i, s in enumerate(result.streaks)]
        parts.append("<h2>Streaks (single-frame trails)</h2>"
                     + _table(rows, ["id", "file", "x", "y", "angle (deg)", "length (px)", "SNR"]))
    try:
        for i, tr in enumerate(result.tracks[:max_candidates]):
            if not tr.positions:
                continue
            images = candidate_images(fs, tr, levels, fwhm)
            (folder / f"M{i + 1:04d}_object_centric.gif").write_bytes(images["object"])
            (folder / f"M{i + 1:04d}_star_centric.gif").write_bytes(images["star"])
            gc = tr.fit.get("great_circle", {})
            sky = (f", {gc['rate_arcsec_per_min']:.2f}\"/min at PA {gc['position_angle_deg']:.1f} deg, great-circle "
                   f"residuals {gc['cross_rms_arcsec']:.2f}\" across / {gc['along_rms_arcsec']:.2f}\" along"
                   if "rate_arcsec_per_min" in gc else "")
            rows = [[q["time"] or q["frame"], q["x"], q["y"], q.get("ra"), q.get("dec"), q.get("mag_inst"), q["snr"],
                     q["sigma_px"]] for q in tr.positions]
            parts.append(
                f"<div class='c'><h2>M{i + 1}: {tr.rate:.3f} px/frame at {tr.angle_deg:.1f} deg{html.escape(sky)}</h2>"
                f"<p>SNR {tr.snr:.1f} (halves {tr.half_snr[0]:.1f} / {tr.half_snr[1]:.1f}), found by {tr.source}</p>"
                f"<img alt='object-centric' src='{_uri(images['object'], 'image/gif')}'>"
                f"<img alt='star-centric' src='{_uri(images['star'], 'image/gif')}'>"
                f"<img alt='sub-stack along the motion' src='{_uri(images['substack'], 'image/png')}'>"
                + _table(rows, ["time (UTC)", "x", "y", "RA (deg)", "Dec (deg)", "mag (instr.)", "SNR", "sigma (px)"])
                + "</div>")
    finally:
        fs.close()
    parts.append("</body></html>")
    page = folder / "index.html"
    page.write_text("\n".join(parts))
    return page
