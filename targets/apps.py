from django.apps import AppConfig


class TargetsConfig(AppConfig):
    name = "targets"
    verbose_name = "Targets, campaigns and alerts"

    def ready(self) -> None:
        from targets import sky

        sky.register_sqlite_functions()
