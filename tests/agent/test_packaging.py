"""The agent installs on its own: a wheel that depends on datas-pipeline, and no Django anywhere."""
from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.agent.conftest import AGENT_SRC, ROOT, agent_env


def test_no_module_of_the_agent_imports_django_or_the_portal():
    probe = (
        "import importlib, pkgutil, sys, datas_agent\n"
        "skip = {'datas_agent.drivers.indi_worker'}\n"  # imports PyIndi; it runs only in the child
        "for m in pkgutil.walk_packages(datas_agent.__path__, 'datas_agent.'):\n"
        "    if m.name not in skip: importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('django', 'rest_framework', 'network', "
        "'sites', 'targets', 'observations', 'celery'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=agent_env(), capture_output=True, text=True,
                         cwd=AGENT_SRC, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_wheel_depends_on_the_pipeline_distribution(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                            str(ROOT / "agent")], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("datas_agent-*.whl")
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    assert "datas_agent/cli.py" in names and "datas_agent/example_config.yaml" in names
    # The science is a dependency, not a copy; nothing of the portal ships.
    assert not any(n.startswith(("pipeline/", "datas_pipeline/", "network/", "sites/", "observations/"))
                   for n in names)
    metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: datas-pipeline>=0.1" in metadata
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "datas-agent = datas_agent.cli:main" in archive.read(entry_points).decode()
