"""Reference stars: Tycho-2 from astrometry.net index files, or a user table."""
