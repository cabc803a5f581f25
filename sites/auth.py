"""Site keys as API credentials: the principal of an agent's request, and its authenticator.

``network.api.BearerKeyAuthentication`` finds :func:`authenticate_agent` through
``settings.DATAS_KEY_AUTHENTICATORS`` (kind ``dsk``), so the project package imports no app.
"""
from __future__ import annotations

from network.models import Network
from sites.models import Site, SiteKey
from sites.services import authenticate_site_key


class SiteAgent:
    """The principal of a request made with a site key: it acts for one site only."""

    is_site_agent = True  # network.api.is_agent
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key: SiteKey) -> None:
        self.key = key
        self.site: Site = key.site
        self.network: Network = key.site.network

    @property
    def username(self) -> str:
        return f"agent:{self.site.pk}"

    def __str__(self) -> str:
        return f"agent of {self.site}"


def authenticate_agent(plaintext: str) -> tuple[SiteAgent, SiteKey]:
    """``(SiteAgent, SiteKey)`` for an active site key; raises sites.services.KeyRejected otherwise."""
    key = authenticate_site_key(plaintext)
    return SiteAgent(key), key
