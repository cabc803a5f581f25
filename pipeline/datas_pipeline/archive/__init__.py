"""An observatory's archive as plain functions: walking a share of FITS files, classifying
frames, grouping calibration frames, clustering pointings on the sphere, and writing
ready-to-process packages (manifest and Siril script). No Django here; the portal's side is
:mod:`observations.archive`.
"""
