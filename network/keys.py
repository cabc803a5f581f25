"""API keys that are shown once and stored only as a hash.

A key reads ``<kind>_<lookup>_<secret>``: ``kind`` says what it authenticates (``dsk`` a site
agent, ``dut`` a person), ``lookup`` is a short public id stored in clear so a request finds
its row through an index, and only the SHA-256 of the whole key is stored. The secret carries
256 random bits, so a fast hash is enough (a slow password hash protects guessable
passwords, not random keys) and it keeps authentication cheap on every agent request.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

SITE_KEY_KIND = "dsk"
USER_TOKEN_KIND = "dut"
KINDS = (SITE_KEY_KIND, USER_TOKEN_KIND)
LOOKUP_LENGTH = 12


class KeyRejected(Exception):
    """A presented key or token is unknown, malformed or revoked (the API answers 401 with the message)."""


class MalformedKey(ValueError):
    """The presented string is not a DATAS key at all (wrong shape or unknown kind)."""


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: ``plaintext`` goes to the user once, the rest to the database."""

    plaintext: str
    lookup: str
    digest: str


def hash_key(plaintext: str) -> str:
    """Hex SHA-256 of a key, the only form in which a key is stored."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def generate_key(kind: str) -> NewKey:
    """Make a new random key of ``kind`` (one of `KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown key kind {kind!r}; expected one of {KINDS}")
    lookup = secrets.token_hex(LOOKUP_LENGTH // 2)
    plaintext = f"{kind}_{lookup}_{secrets.token_urlsafe(32)}"
    return NewKey(plaintext=plaintext, lookup=lookup, digest=hash_key(plaintext))


def parse_key(plaintext: str) -> tuple[str, str]:
    """Split a presented key into ``(kind, lookup)``; raise `MalformedKey` if it is not one."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] not in KINDS or len(parts[1]) != LOOKUP_LENGTH or not parts[2]:
        raise MalformedKey("not a DATAS key: expected '<kind>_<lookup>_<secret>'")
    return parts[0], parts[1]


def key_matches(plaintext: str, digest: str) -> bool:
    """Constant-time comparison of a presented key against a stored digest."""
    return hmac.compare_digest(hash_key(plaintext), digest)
