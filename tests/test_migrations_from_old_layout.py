"""A database migrated and filled by the layout before the restructure migrates to this one, keeping every row.

The scheduler and the demo left ``network/`` for their own apps (``scheduling``, ``demo``) and the
frame tasks left ``pipeline/`` for ``observations``; no model moved, so every table keeps its name
and app label. This proves it on a real database: the old tree (checked out from git into a
temporary folder) migrates a fresh PostgreSQL database and loads the demo network into it; this
tree's ``migrate`` then runs on the same database, and every table keeps every row.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The last commit with the old layout (network/ holding the scheduler and demo, pipeline/ flat).
OLD_LAYOUT_COMMIT = "677deceabe6169ed45bd26473db8a65408756b83"
# May gain rows, never lose any: new beat entries (the archive's daily re-scan, the alert polls) come with the new layout.
GROWING = {"django_migrations", "django_content_type", "auth_permission", "django_celery_beat_periodictask",
           "django_celery_beat_crontabschedule", "django_celery_beat_intervalschedule"}

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]


def _database_url(name: str) -> str:
    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    return urlunsplit(parts._replace(path=f"/{name}"))


def _manage(tree: Path, database_url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    env.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="network.settings")
    env.pop("REDIS_URL", None)  # Celery tasks run in-process, as in the embedded set-up
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{tree.name}: manage.py {' '.join(args)}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done.stdout


def _row_counts(database_url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


@pytest.fixture
def old_layout_database(tmp_path):
    import psycopg

    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.skip("needs PostgreSQL")
    name = f"{urlsplit(os.environ['DATABASE_URL']).path.lstrip('/') or 'datas'}_old_layout"
    admin_url = _database_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_made_by_the_old_layout_keeps_every_row(old_layout_database, tmp_path):
    old_tree = tmp_path / "old"
    old_tree.mkdir()
    archive = tmp_path / "old.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), OLD_LAYOUT_COMMIT], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(old_tree, filter="data")
    assert (old_tree / "network" / "schedules.py").is_file() and (old_tree / "pipeline" / "tasks.py").is_file()

    _manage(old_tree, old_layout_database, "migrate", "--noinput")
    _manage(old_tree, old_layout_database, "load_demo")
    before = _row_counts(old_layout_database)
    assert before["observations_observation"] > 0 and before["sites_site"] > 0 and before["targets_target"] > 0
    assert before["django_celery_beat_periodictask"] > 0  # the scheduler's and the pipeline's beat entries

    _manage(ROOT, old_layout_database, "migrate", "--noinput")
    after = _row_counts(old_layout_database)
    assert set(before) <= set(after)
    lost = {t: (before[t], after[t]) for t in before if after[t] < before[t]}
    changed = {t: (before[t], after[t]) for t in before if t not in GROWING and after[t] != before[t]}
    assert not lost and not changed
    # Nothing left for this layout to migrate, and its beat entries still name tasks that exist.
    assert "[ ]" not in _manage(ROOT, old_layout_database, "showmigrations")
    check = _manage(ROOT, old_layout_database, "shell", "-c",
                    "from django_celery_beat.models import PeriodicTask; from network.celery import app; "
                    "app.loader.import_default_modules(); "
                    "print(sorted(t.task for t in PeriodicTask.objects.all() if t.task not in app.tasks))")
    assert check.strip().splitlines()[-1] == "[]"
