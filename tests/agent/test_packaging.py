"""The agent installs on its own: a wheel carrying the shared pipeline science, and no Django anywhere."""
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
def test_wheel_bundles_the_pipeline_science(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                            str(ROOT / "agent")], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("datas_agent-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "datas_agent/cli.py" in names and "datas_agent/example_config.yaml" in names
    assert {"pipeline/extract.py", "pipeline/photometry.py", "pipeline/differential.py"} <= names
    assert "pipeline/tasks.py" not in names and not any(n.startswith(("network/", "sites/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "datas-agent = datas_agent.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
