from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "network"
    verbose_name = "Networks (tenants)"

    def ready(self) -> None:
        from datas_pipeline.sky.timedata import configure_time_data

        from network import celery, schema  # noqa: F401  the Celery app; the OpenAPI auth extension

        # Web processes, Celery workers, management commands and tests: astropy offline and
        # working past its bundled tables (DATAS_TIME_DATA_DOWNLOAD allows refreshes).
        configure_time_data()
