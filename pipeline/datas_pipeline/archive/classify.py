"""Light, dark, flat or bias: from IMAGETYP in its many spellings, then from heuristics.

:func:`datas_pipeline.io.headers.normalise_header` reads IMAGETYP, FRAMETYP, OBSTYPE and their
spellings ('Light Frame', 'object', 'Dark Field', 'MASTER BIAS', 'zero', ...). When no
keyword says, the folder and file names a capture program made are the next witness
('Darks/300s/...', 'BIAS_0001.fit'), then the header itself: a zero-length exposure is a
bias, a frame with a mount pointing a light. Every answer carries how it was reached.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from datas_pipeline.io.headers import FrameHeader

# Words in folder or file names, per kind; matched as whole tokens, in this order (a
# 'flat darks' folder holds darks, 'dark flats' too: the dark wins).
NAME_WORDS = (
    ("bias", ("bias", "biases", "offset", "offsets", "zero", "zeros")),
    ("dark", ("dark", "darks", "darkflat", "darkflats", "flatdark", "flatdarks")),
    ("flat", ("flat", "flats", "skyflat", "skyflats", "domeflat", "domeflats", "twilight")),
    ("light", ("light", "lights", "object", "science")),
)


class UnclassifiedFrame(ValueError):
    """Nothing says what kind of frame this is."""


@dataclass(frozen=True)
class Classification:
    """The kind of a frame (``light``, ``dark``, ``flat`` or ``bias``) and how it was decided."""

    kind: str
    reason: str


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z]+", text.lower()) if t]


def kind_from_names(path: str | PurePath) -> tuple[str, str] | None:
    """(kind, the name that said so) from the file name, then its folders innermost first."""
    path = PurePath(path)
    stem = path.name.split(".")[0]
    for name in [stem, *[p for p in reversed(path.parent.parts)]]:
        tokens = set(_tokens(name))
        for kind, words in NAME_WORDS:
            if tokens & set(words):
                return kind, name
    return None


def classify_frame(info: FrameHeader, path: str | PurePath, raw_type: str | None = None) -> Classification:
    """What kind of frame ``path`` is, and why.

    Parameters
    ----------
    info : FrameHeader
        The normalised header (its ``image_type`` is IMAGETYP read through every spelling).
    path : str or PurePath
        Where the file lies on the share (folder and file names are heuristics).
    raw_type : str, optional
        The IMAGETYP value as written, for the reason.

    Raises
    ------
    UnclassifiedFrame
        Neither the header nor the names say, and the exposure and pointing do not decide.
    """
    if info.image_type is not None:
        said = f"IMAGETYP {raw_type!r}" if raw_type else "the frame-type keyword"
        return Classification(info.image_type, f"{said} says {info.image_type}")
    named = kind_from_names(path)
    if named is not None:
        return Classification(named[0], f"no usable IMAGETYP; the name {named[1]!r} says {named[0]}")
    if info.exposure_s is not None and info.exposure_s <= 1e-3:
        return Classification("bias", f"no IMAGETYP; a {info.exposure_s:g} s exposure is a bias")
    if info.ra_deg is not None and info.dec_deg is not None:
        return Classification("light", "no IMAGETYP; the header gives a mount pointing, so a light")
    raise UnclassifiedFrame("no IMAGETYP, no telling folder or file name, and neither a zero exposure nor a "
                            "pointing: cannot tell light, dark, flat or bias (write IMAGETYP)")
