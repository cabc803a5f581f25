"""Registers the frame pipeline's tasks (pipeline/tasks.py) and the archive's daily re-scan
(observations/archive/tasks.py) through Celery's app autodiscovery.

pipeline/ is not a Django app, so its tasks module is imported from here.
"""
from observations.archive import tasks as archive_tasks  # noqa: F401,E402
from pipeline import tasks as pipeline_tasks  # noqa: F401
