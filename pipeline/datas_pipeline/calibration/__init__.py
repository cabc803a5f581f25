"""CCD calibration: master bias/dark/flat, which masters fit a light, cosmetic defects."""
