"""Physical bounds shared by the models, so absurd numbers are refused where they enter.

A float that is finite but absurd (a 1e308 µm pixel) would otherwise be stored and overflow
in derived quantities (the pixel scale becomes infinite and no JSON can carry it).
"""
from django.core.validators import MaxValueValidator, MinValueValidator

MAGNITUDE_VALIDATORS = [MinValueValidator(-30), MaxValueValidator(40)]
HOUR_ANGLE_VALIDATORS = [MinValueValidator(-12), MaxValueValidator(12)]
# Priorities, boosts and durations: generous, but far from overflowing any product of them.
WEIGHT_VALIDATORS = [MinValueValidator(-1e6), MaxValueValidator(1e6)]
POSITIVE_WEIGHT_VALIDATORS = [MinValueValidator(0), MaxValueValidator(1e6)]
ERROR_RADIUS_VALIDATORS = [MinValueValidator(0), MaxValueValidator(180 * 3600)]  # arcsec
