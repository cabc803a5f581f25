"""Small template filters of the portal: ages, UNIX times, percentages, degrees."""
from __future__ import annotations

import math
from datetime import UTC, datetime

from django import template

register = template.Library()


@register.filter
def age(seconds: float | None) -> str:
    """A duration in seconds as '42 s', '5 min', '3.2 h', '4 d'; 'never' for None."""
    if seconds is None:
        return "never"
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


@register.filter
def unix_utc(value: float | None, fmt: str = "%H:%M") -> str:
    """POSIX seconds as a UTC time string."""
    if value is None:
        return ""
    return datetime.fromtimestamp(float(value), UTC).strftime(fmt)


@register.filter
def percent(value: float | None, digits: int = 0) -> str:
    if value is None:
        return ""
    return f"{100 * float(value):.{int(digits)}f}%"


@register.filter
def hours(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "—"
    return f"{float(value):.1f} h"


@register.filter
def sexagesimal_ra(ra_deg: float | None) -> str:
    """Right ascension in degrees as hh:mm:ss.s."""
    if ra_deg is None:
        return ""
    total = (float(ra_deg) % 360.0) / 15.0 * 3600.0
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:04.1f}"


@register.filter
def sexagesimal_dec(dec_deg: float | None) -> str:
    """Declination in degrees as ±dd:mm:ss."""
    if dec_deg is None:
        return ""
    sign = "-" if dec_deg < 0 else "+"
    total = abs(float(dec_deg)) * 3600.0
    d, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{int(d):02d}:{int(m):02d}:{s:04.1f}"


@register.simple_tag
def demo_logins() -> dict | None:
    """The demo's accounts and password, for the login page of a demo deployment only.

    Shown when the demo was loaded (its ``demo`` user exists) and the server runs with
    DEBUG, as ``make run`` does; a production deployment (DEBUG off) never lists them.
    """
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from demo.services import DEMO_PASSWORD, DEMO_USERNAME

    if not settings.DEBUG:
        return None
    users = get_user_model().objects
    if not users.filter(username=DEMO_USERNAME).exists():
        return None
    observers = list(users.filter(username__startswith="obs_", memberships__isnull=False).distinct()
                     .order_by("username").values_list("username", flat=True)[:20])
    return {"manager": DEMO_USERNAME, "observers": observers, "password": DEMO_PASSWORD}
