"""Pixel rejection and combination, stacking in a memory budget, live stacking."""
