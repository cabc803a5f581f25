"""Matching the filters a target asks for to the names a site's filter wheel reports.

Exports must use the wheel's names exactly (KStars silently falls back to slot 1 for an
unknown name), so a request for ``Ha`` at a site whose wheel says ``H-Alpha`` resolves to
``H-Alpha``. An exact (case-insensitive) name always wins; otherwise names are compared by
band, through the unambiguous synonyms below.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

# Each group names one passband. Sloan bands need a prime or an "s" prefix: a bare "g" or "r"
# on an amateur wheel is the RGB colour filter.
BAND_SYNONYMS: tuple[frozenset[str], ...] = tuple(frozenset(group) for group in (
    {"l", "lum", "luminance", "clear", "c", "cl"},
    {"r", "red", "rc", "r_c", "cousins r"},
    {"g", "green"},
    {"b", "blue", "johnson b"},
    {"v", "johnson v"},
    {"i", "ic", "i_c", "cousins i"},
    {"u", "johnson u"},
    {"ha", "h-alpha", "halpha", "h_alpha", "h-a", "hα"},
    {"hb", "h-beta", "hbeta", "h_beta"},
    {"oiii", "o3", "o-iii", "o iii"},
    {"sii", "s2", "s-ii", "s ii"},
    {"g'", "sg", "gp", "sloan g", "sdss g"},
    {"r'", "sr", "rp", "sloan r", "sdss r"},
    {"i'", "si", "ip", "sloan i", "sdss i"},
    {"z'", "sz", "zp", "sloan z", "sdss z"},
))
_BAND_OF = {name: index for index, group in enumerate(BAND_SYNONYMS) for name in group}
LUMINANCE_BAND = 0


def normalise(name: str) -> str:
    """Lower case, trimmed, without a trailing word ``filter``."""
    text = " ".join(name.strip().lower().split())
    return text[:-7].strip() if text.endswith(" filter") else text


def band_key(name: str) -> str:
    """A key equal for two names of the same band (the normalised name when it is not listed)."""
    text = normalise(name)
    band = _BAND_OF.get(text)
    return f"band:{band}" if band is not None else f"name:{text}"


def match_filter(requested: str, site_filters: Sequence[str]) -> str | None:
    """The site's exact name for a requested filter, or ``None`` when the site lacks it."""
    wanted = normalise(requested)
    for name in site_filters:
        if normalise(name) == wanted:
            return name
    key = band_key(requested)
    for name in site_filters:
        if band_key(name) == key:
            return name
    return None


def resolve_filters(requested: Sequence[str], site_filters: Sequence[str]) -> list[str]:
    """The site's names for the requested filters it has, in request order, without repeats.

    With nothing requested, one filter is chosen: luminance/clear if the wheel has one, else
    its first slot; a site without a wheel gets ``[""]`` (no filter change).
    """
    if not requested:
        for name in site_filters:
            if band_key(name) == f"band:{LUMINANCE_BAND}":
                return [name]
        return [site_filters[0]] if site_filters else [""]
    out: list[str] = []
    for name in requested:
        match = match_filter(name, site_filters)
        if match is not None and match not in out:
            out.append(match)
    return out


def coverage_table(target_patterns: Sequence[tuple[str, ...]], site_patterns: Sequence[tuple[str, ...]]
                   ) -> np.ndarray:
    """Fraction of each target pattern's filters each site pattern has, shape (targets, sites).

    Patterns are small in number (most targets ask for the same few sets), so the table is
    computed once per pass and indexed per (target, site).
    """
    table = np.ones((len(target_patterns), len(site_patterns)), dtype=np.float32)
    site_keys = [{band_key(n) for n in names} for names in site_patterns]
    for i, wanted in enumerate(target_patterns):
        if not wanted:
            continue
        wanted_keys = {band_key(n) for n in wanted}
        for j, keys in enumerate(site_keys):
            table[i, j] = len(wanted_keys & keys) / len(wanted_keys)
    return table


def pattern_index(patterns: Iterable[tuple[str, ...]]) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Integer codes for filter tuples and the list of distinct tuples they index."""
    lookup: dict[tuple[str, ...], int] = {}
    codes = [lookup.setdefault(tuple(p), len(lookup)) for p in patterns]
    return np.asarray(codes, dtype=np.int32), list(lookup)
