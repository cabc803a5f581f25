"""Physical bounds shared by the models, so absurd numbers are refused where they enter.

A float that is finite but absurd (a 1e308 µm pixel) would otherwise be stored and overflow
in derived quantities (the pixel scale becomes infinite and no JSON can carry it).
"""
import datetime as dt

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.dateparse import parse_datetime

MAGNITUDE_VALIDATORS = [MinValueValidator(-30), MaxValueValidator(40)]
# Priorities, boosts and durations: generous, but far from overflowing any product of them.
WEIGHT_VALIDATORS = [MinValueValidator(-1e6), MaxValueValidator(1e6)]
POSITIVE_WEIGHT_VALIDATORS = [MinValueValidator(0), MaxValueValidator(1e6)]
ERROR_RADIUS_VALIDATORS = [MinValueValidator(0), MaxValueValidator(180 * 3600)]  # arcsec


def parse_instant(value: object, what: str) -> float:
    """An ISO-8601 date-time as Unix seconds (naive means UTC).

    Raises
    ------
    django.core.exceptions.ValidationError
        When ``value`` is not text in ISO-8601 form or names an impossible date
        ("2025-02-30T00:00:00"), which :func:`~django.utils.dateparse.parse_datetime`
        signals with ``ValueError``.
    """
    if not isinstance(value, str):
        raise ValidationError(f"{what} {value!r} is not an ISO-8601 date-time such as '2025-03-01T20:00:00Z'")
    try:
        parsed = parse_datetime(value)
    except ValueError as exc:
        raise ValidationError(f"{what} {value!r} is not a real date-time: {exc}") from exc
    if parsed is None:
        raise ValidationError(f"{what} {value!r} is not an ISO-8601 date-time such as '2025-03-01T20:00:00Z'")
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def parse_windows(value: object, field: str) -> list[tuple[float, float, dict]]:
    """Time windows ``[{"start": ISO-8601, "end": ISO-8601, ...}]`` as ``(start_s, end_s, window)``.

    The one reading of windows shared by the models' validators and the scheduler, so a
    window the database accepted is one the scheduler can use. Times are Unix seconds;
    naive date-times are UTC; each window must end after it starts.

    Raises
    ------
    django.core.exceptions.ValidationError
        Naming ``field`` and the first window that is not usable.
    """
    if not isinstance(value, list):
        raise ValidationError(f"{field} must be a list of {{start, end}} windows (ISO-8601, UTC)")
    windows = []
    for window in value:
        if not isinstance(window, dict) or not {"start", "end"} <= window.keys():
            raise ValidationError(f"{field} window {window!r} needs 'start' and 'end' (ISO-8601, UTC)")
        start = parse_instant(window["start"], f"{field} window start")
        end = parse_instant(window["end"], f"{field} window end")
        if end <= start:
            raise ValidationError(f"{field} window {window!r} ends before it starts")
        windows.append((start, end, window))
    return windows


def validate_availability(value: object) -> None:
    """A site's availability: windows it may be scheduled (see :func:`parse_windows`)."""
    parse_windows(value, "availability")
