from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = "Scheduler (ranked lists, passes, tasking exports)"

    def ready(self) -> None:
        from scheduling import signals  # noqa: F401  marks the ranked lists stale when their inputs change
