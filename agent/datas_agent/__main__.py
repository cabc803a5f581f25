"""``python -m datas_agent``: the same as the ``datas-agent`` command."""
from datas_agent.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
