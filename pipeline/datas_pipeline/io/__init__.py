"""FITS reading and writing, header normalisation across capture programs, file checks."""
