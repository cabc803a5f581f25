from django.apps import AppConfig


class TargetsConfig(AppConfig):
    name = "targets"
    verbose_name = "Targets, campaigns and alerts"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from targets import sky
        from targets.alerts.polls import poll_entries_after_migrate
        from targets.coverage import ensure_coverage_schedule

        sky.register_sqlite_functions()
        post_migrate.connect(poll_entries_after_migrate, dispatch_uid="alert-poll-beat-entries")
        post_migrate.connect(ensure_coverage_schedule, dispatch_uid="coverage-beat-entry")
