from django.apps import AppConfig


class SitesConfig(AppConfig):
    name = "sites"
    verbose_name = "Sites"

    def ready(self) -> None:
        from sites import signals  # noqa: F401  the cached key records and site states follow the database
