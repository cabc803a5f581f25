"""``python -m datas_pipeline COMMAND ...``: the same command line as ``datas-pipeline``."""
import sys

from datas_pipeline.cli.main import main

sys.exit(main())
