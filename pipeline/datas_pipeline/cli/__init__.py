"""Sub-commands of ``python -m pipeline``, one module per group (see pipeline/__main__.py)."""
