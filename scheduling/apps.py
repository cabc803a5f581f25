from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = "Scheduler (ranked lists, passes, tasking exports)"

    def ready(self) -> None:
        from scheduling import passes, signals  # noqa: F401  signals mark the ranked lists stale
        from targets.alerts import scheduler_hooks

        # Alert ingest (targets, a layer below) reaches the scheduler through this hook.
        scheduler_hooks.register(passes)
