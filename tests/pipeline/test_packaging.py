"""pipeline/ and agent/ are ordinary distributions: wheels that install without Django and run.

``python -m build`` makes a wheel of each; both install into a fresh virtual environment
from the package index (no Django, no Celery, no portal apps), where every module imports and
both command lines answer ``--help``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ("django", "rest_framework", "celery", "network", "sites", "targets", "observations", "scheduling", "demo")

# Modules that need an optional extra, listed with it (the wheel may ship them; an import
# without the extra says which one to install).
NEEDS_EXTRA = {"datas_agent.drivers.indi_worker",  # PyIndi: datas-agent[indi]
               "datas_pipeline.archive.cluster"}  # scikit-learn: datas-pipeline[archive]

PROBE = f"""
import importlib, pkgutil, sys
failed = []
for pkg in ("datas_pipeline", "datas_agent"):
    root = importlib.import_module(pkg)
    for info in pkgutil.walk_packages(root.__path__, pkg + "."):
        if info.name.endswith("__main__") or info.name in {sorted(NEEDS_EXTRA)!r}:
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{{info.name}}: {{exc}}")
print(failed)
print(sorted({{n.split('.')[0] for n in sys.modules}} & set({PORTAL!r})))
"""


def test_datas_pipeline_imports_no_django_or_app():
    probe = (
        "import importlib, pkgutil, sys, datas_pipeline\n"
        "for m in pkgutil.walk_packages(datas_pipeline.__path__, 'datas_pipeline.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        f"print(sorted({{n.split('.')[0] for n in sys.modules}} & set({PORTAL!r})))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                         cwd=ROOT / "pipeline", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_wheels_install_into_a_clean_venv_without_django(tmp_path):
    wheels = tmp_path / "wheels"
    for project in ("pipeline", "agent"):
        build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels),
                                str(ROOT / project)], capture_output=True, text=True, timeout=600)
        assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (pipeline_wheel,) = wheels.glob("datas_pipeline-*.whl")
    (agent_wheel,) = wheels.glob("datas_agent-*.whl")
    agent_names = zipfile.ZipFile(agent_wheel).namelist()
    assert "datas_agent/example_config.yaml" in agent_names
    assert not any(n.startswith(("datas_pipeline/", "pipeline/")) for n in agent_names)  # a dependency, not a copy
    pipeline_names = zipfile.ZipFile(pipeline_wheel).namelist()
    assert {"datas_pipeline/sky/visibility.py", "datas_pipeline/cli/main.py"} <= set(pipeline_names)
    # The compiled kernels, without their build inputs.
    assert any(n.startswith("datas_pipeline/kernels.") and n.endswith((".so", ".pyd")) for n in pipeline_names)
    assert not any(n.endswith((".pyx", ".c", ".h")) for n in pipeline_names)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python, bin_dir = env_dir / "bin" / "python", env_dir / "bin"
    # Without the caller's PYTHONPATH, which may hold the checkout's editable datas_pipeline.
    install_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(pipeline_wheel), str(agent_wheel)],
                             capture_output=True, text=True, timeout=900, env=install_env)
    assert install.returncode == 0, install.stderr[-3000:]
    frozen = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True).stdout.lower()
    assert "django" not in frozen and "celery" not in frozen

    clean_env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for command in ([str(bin_dir / "datas-pipeline"), "--help"], [str(python), "-m", "datas_pipeline", "--help"],
                    [str(bin_dir / "datas-agent"), "--help"]):
        run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=clean_env)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.startswith("usage: datas-")
    probe = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                           env=clean_env)
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.split("\n")[:2] == ["[]", "[]"], probe.stdout
