"""DATAS image science: plain functions over numpy arrays and astropy objects.

Nothing in this package imports Django (import-linter enforces it), so the site agent runs
the same code as the server's Celery workers, whose tasks live on the Django side
(``observations.tasks``). Subpackages, one per step of the science:

``io``            FITS reading/writing, header normalisation, file checks
``sky``           time data, ephemeris, visibility and windows, airmass, horizon, filter bands
``catalog``       reference stars (Tycho-2 from astrometry.net index files, user tables)
``calibration``   master bias/dark/flat, choosing masters, cosmetic defects
``detection``     source extraction, PSF fits, frame grading
``photometry``    aperture photometry, apertures, zero points, a target on a solved frame
``astrometry``    plate solving and WCS propagation
``registration``  star matching, transforms, resampling
``stacking``      rejection and combination, live stacking
``display``       stretches, previews, colour composites
``synthetic``     seeded star fields and sequences with known truth
``cli``           the ``datas-pipeline`` command line
"""
__version__ = "0.1.0"
