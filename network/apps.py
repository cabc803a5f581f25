from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "network"
    verbose_name = "Networks (tenants)"

    def ready(self) -> None:
        from network import schema  # noqa: F401  registers the OpenAPI auth extension
