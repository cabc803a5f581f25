"""Registration by stars: pattern matching, transforms and their fits, flux-conserving resampling."""
