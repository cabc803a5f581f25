"""The project package is light: importing ``network`` loads neither Celery nor Django, and
both ``celery -A network`` and ``celery -A network.celery`` find the one Celery app."""
from __future__ import annotations

import subprocess
import sys


def test_importing_network_loads_nothing_heavy():
    probe = ("import sys, network\n"
             "print(sorted(m for m in ('celery', 'django', 'numpy', 'astropy', 'rest_framework') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_celery_finds_the_app_by_either_name():
    from celery.app.utils import find_app

    from network.celery import app

    assert find_app("network") is app and find_app("network.celery") is app
    assert app.main == "datas"
