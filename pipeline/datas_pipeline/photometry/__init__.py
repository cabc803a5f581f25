"""Aperture photometry, zero points and differential magnitudes, a target on a solved frame."""
