"""Moving objects in aligned sequences: fast movers by linking, slow and faint ones by
shift-and-stack, streaks in single frames; positions, MPC/ADES files and an HTML report.

Start at :func:`datas_pipeline.movers.search.find_movers`; :func:`datas_pipeline.movers.output.result_json`
gives the JSON record the command line writes, and
:func:`datas_pipeline.movers.output.write_movers_json` writes it for a server task.
"""
from datas_pipeline.movers.output import result_json, write_movers_json
from datas_pipeline.movers.search import MoverOptions, MoverResult, Track, find_movers

__all__ = ["MoverOptions", "MoverResult", "Track", "find_movers", "result_json", "write_movers_json"]
