from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "network"
    verbose_name = "Networks (tenants)"

    def ready(self) -> None:
        from network import schedule_signals, schema  # noqa: F401  stale-list signals; OpenAPI auth extension
        from pipeline.timedata import configure_time_data

        # Web processes, Celery workers, management commands and tests: astropy offline and
        # working past its bundled tables (DATAS_TIME_DATA_DOWNLOAD allows refreshes).
        configure_time_data()
