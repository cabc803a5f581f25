"""Personal API tokens for people (scripts, ingestion services)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from network.keys import USER_TOKEN_KIND, KeyRejected, MalformedKey, generate_key, key_matches, parse_key
from network.models import UserToken

LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRejected(KeyRejected):
    """A presented personal token is unknown, malformed or revoked."""


@dataclass(frozen=True)
class IssuedToken:
    token: UserToken
    plaintext: str


def issue_user_token(user: AbstractBaseUser, label: str = "") -> IssuedToken:
    """Create a personal API token; the plaintext is returned once and never stored."""
    new = generate_key(USER_TOKEN_KIND)
    token = UserToken.objects.create(user=user, label=label, lookup=new.lookup, digest=new.digest)
    return IssuedToken(token=token, plaintext=new.plaintext)


def authenticate_user_token(plaintext: str) -> UserToken:
    """The active token matching ``plaintext``; raise `TokenRejected` otherwise."""
    try:
        kind, lookup = parse_key(plaintext)
    except MalformedKey as exc:
        raise TokenRejected(str(exc)) from exc
    if kind != USER_TOKEN_KIND:
        raise TokenRejected("not a personal token")
    token = UserToken.objects.select_related("user").filter(lookup=lookup).first()
    if token is None or not key_matches(plaintext, token.digest):
        raise TokenRejected("unknown token")
    if not token.is_active or not token.user.is_active:
        raise TokenRejected("this token was revoked or its user deactivated")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        UserToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def authenticate_person(plaintext: str) -> tuple:
    """``(user, token)`` for a personal token (``dut_...``); the API's authenticator for that kind."""
    token = authenticate_user_token(plaintext)
    return token.user, token
