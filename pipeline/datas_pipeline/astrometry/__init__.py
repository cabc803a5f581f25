"""Plate solving (astrometry.net) and WCS propagation."""
