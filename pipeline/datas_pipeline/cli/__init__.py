"""Sub-commands of ``datas-pipeline``, one module per group (see pipeline/datas_pipeline/cli/main.py)."""
