"""The Celery application.

With ``REDIS_URL`` set, Redis is the broker and the result backend. Without it (the embedded
default) tasks run eagerly in the calling process, so ``make run`` needs no Redis.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "network.settings")

app = Celery("datas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
