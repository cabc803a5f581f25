from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The web portal: server-rendered pages over the apps' services and selectors."""

    name = "portal"
    verbose_name = "Web portal"

    def ready(self) -> None:
        from portal import signals  # noqa: F401  status history from heartbeats
