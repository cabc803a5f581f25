# Replaces the contrib astropy hook: its submodule sweep imports astropy.visualization.wcsaxes,
# which raises pytest's Skipped when matplotlib is absent. The agent needs no plotting or tests.
from PyInstaller.utils.hooks import collect_data_files, collect_submodules

hiddenimports = collect_submodules(
    "astropy", filter=lambda name: not any(part in name for part in (".visualization", ".tests", "conftest")))
# include_py_files: astropy reads its PLY parser tables (generic_parsetab.py...) as files.
datas = collect_data_files("astropy", include_py_files=True, excludes=["**/tests/**"])
