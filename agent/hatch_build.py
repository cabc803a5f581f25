"""Bundle the repository's ``pipeline/`` science modules into the agent wheel.

The server's Celery tasks (``pipeline/tasks.py``) and the ``python -m pipeline`` command line
stay behind: the agent needs the functions, not Django or the CLI.
"""
from __future__ import annotations

from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LEFT_BEHIND = {"tasks.py", "__main__.py"}


class PipelineBundleHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        pipeline = Path(self.root).resolve().parent / "pipeline"
        if not (pipeline / "__init__.py").is_file():
            raise RuntimeError(
                f"{pipeline} not found: build the agent from a DATAS checkout (pip install ./agent)"
            )
        for path in sorted(pipeline.glob("*.py")):
            if path.name not in LEFT_BEHIND:
                build_data["force_include"][str(path)] = f"pipeline/{path.name}"
