from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "network"
    verbose_name = "Networks (tenants)"

    def ready(self) -> None:
        from network import schedule_signals, schema  # noqa: F401  stale-list signals; OpenAPI auth extension
