"""An observatory's archive in the portal: shares of FITS catalogued in place as frames,
their calibration library, pointings clustered on the sphere, ready-to-process packages,
and tasking for what is still missing. The science is in :mod:`datas_pipeline.archive`.
"""
