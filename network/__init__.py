"""DATAS project package: settings, URLs, the Celery app and tenancy (networks, memberships, API base).

Importing it imports nothing heavy. The Celery app lives in ``network.celery`` and is loaded
by ``NetworkConfig.ready`` (so every Django process binds its tasks to it) or by the worker
(``celery -A network.celery worker``; ``celery -A network`` finds it too).
"""


def __getattr__(name: str):
    if name == "celery_app":  # the conventional Django+Celery name, loaded on first use
        from network.celery import app

        return app
    raise AttributeError(f"module 'network' has no attribute {name!r}")
