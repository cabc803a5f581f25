"""Source extraction (sep), PSF profile fits and frame grading."""
