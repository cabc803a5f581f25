"""The router every app's ``api_urls`` uses (kept apart from network.api, which DRF's settings import)."""
from rest_framework.routers import SimpleRouter


class OptionalSlashRouter(SimpleRouter):
    """A router whose paths work with and without the trailing slash (agents never get redirects)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"
