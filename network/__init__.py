"""DATAS project package: settings, URLs, the Celery app, tenancy and the scheduler."""
from .celery import app as celery_app

__all__ = ("celery_app",)
