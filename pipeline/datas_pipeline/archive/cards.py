"""Fast reading of FITS header cards, for cataloguing tens of thousands of files.

astropy parses each card lazily but expensively (a configuration lookup and a regular
expression per value): most of a header-only catalogue pass. Capture programs write plain
fixed-format cards (FITS standard 4.2: strings in quotes, logicals T/F, integers and
reals), which :func:`parse_cards` reads with string operations; any card it does not
recognise is handed to astropy's own parser, so nothing is read differently.
:class:`CardMap` offers the part of :class:`astropy.io.fits.Header` that
:func:`datas_pipeline.io.headers.normalise_header` uses (``get``, ``in``, ``comments``).
"""
from __future__ import annotations

from typing import Any, NamedTuple

from astropy.io import fits

CARD = 80
COMMENTARY = frozenset({"COMMENT", "HISTORY", ""})


def _astropy_card(image: str) -> tuple[str, Any, str]:
    card = fits.Card.fromstring(image)
    value = card.value
    return card.keyword, value, card.comment


def _split_comment(text: str) -> tuple[str, str]:
    slash = text.find("/")
    if slash < 0:
        return text.strip(), ""
    return text[:slash].strip(), text[slash + 1:].strip()


def _number(token: str) -> int | float | None:
    if not token:
        return None
    if token[0] in "+-0123456789." and all(c in "+-0123456789.EeDd" for c in token):
        if "." in token or "E" in token or "e" in token or "D" in token or "d" in token:
            try:
                return float(token.replace("D", "E").replace("d", "e"))
            except ValueError:
                return None
        try:
            return int(token)
        except ValueError:
            return None
    return None


def parse_card(image: str) -> tuple[str, Any, str]:
    """(keyword, value, comment) of one 80-character card; astropy's reading for unusual ones."""
    keyword = image[:8].rstrip()
    if keyword in COMMENTARY or image[8:10] != "= ":
        if keyword in COMMENTARY:
            return keyword, image[8:].rstrip(), ""
        return _astropy_card(image)
    rest = image[10:]
    stripped = rest.lstrip()
    if stripped.startswith("'"):
        # A quoted string: '' is an escaped quote; the value ends at the first lone quote.
        i, chars = 1, []
        while i < len(stripped):
            c = stripped[i]
            if c == "'":
                if i + 1 < len(stripped) and stripped[i + 1] == "'":
                    chars.append("'")
                    i += 2
                    continue
                break
            chars.append(c)
            i += 1
        else:
            return _astropy_card(image)
        after = stripped[i + 1:].strip()
        if after and not after.startswith("/"):
            return _astropy_card(image)
        return keyword, "".join(chars).rstrip(), after[1:].strip() if after else ""
    token, comment = _split_comment(rest)
    if token == "T":
        return keyword, True, comment
    if token == "F":
        return keyword, False, comment
    number = _number(token)
    if number is None:
        return _astropy_card(image)
    return keyword, number, comment


def parse_cards(text: str) -> list[tuple[str, Any, str]]:
    """Every card of a header (``text`` up to, not including, END)."""
    cards = []
    for start in range(0, len(text), CARD):
        image = text[start:start + CARD].ljust(CARD)
        if image.startswith("END     ") or image.rstrip() == "END":
            break
        if not image.strip():
            continue
        cards.append(parse_card(image))
    return cards


class Card(NamedTuple):
    keyword: str
    value: Any
    comment: str


class CardMap:
    """A read-only header from parsed cards: the first value of each keyword, comments, and
    ``cards`` in order (what :func:`observations.frame_header.header_cards` reads)."""

    def __init__(self, cards: list[tuple[str, Any, str]]) -> None:
        self.cards = [Card(*card) for card in cards]
        self.values: dict[str, Any] = {}
        self.comments: dict[str, str] = {}
        for keyword, value, comment in cards:
            if keyword in COMMENTARY or keyword in self.values:
                continue
            self.values[keyword] = value
            self.comments[keyword] = comment

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key.upper(), default)

    def __contains__(self, key: str) -> bool:
        return key.upper() in self.values

    def __getitem__(self, key: str) -> Any:
        return self.values[key.upper()]
