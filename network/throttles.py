"""Request budgets that hold under concurrency: per site key, per person, per address that fails.

DRF's ``SimpleRateThrottle`` reads a list of timestamps from the cache, appends one and
writes it back: sixteen connections racing through that read-modify-write let 179-216
requests through a 120/minute budget. Here each budget is one counter per fixed window,
created with ``cache.add`` (SET NX) and raised with ``cache.incr`` (Redis INCR; a lock in the
in-process cache), so exactly ``N`` requests pass in any window, however many race.

Failed authentication is counted per client address: past ``DATAS_AUTH_FAILURES_ALLOWED``
failures in a window, the address waits before its next try, twice as long after every
further failure (up to ``AUTH_BLOCK_MAX_S``), and its keys are not even checked meanwhile,
so guessing keys costs the guesser, not the server.
"""
from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

AUTH_WINDOW_S = 600
AUTH_BLOCK_MAX_S = 900


def parse_rate(rate: str) -> tuple[int, int]:
    """``'120/minute'`` -> (120, 60): requests allowed and the window in seconds."""
    count, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(period[:1].lower())
    if not count.strip().isdigit() or seconds is None:
        raise ValueError(f"a rate reads 'N/second|minute|hour|day', not {rate!r}")
    return int(count), seconds


# One round trip on Redis: raise the window's counter, giving it its expiry when it is new.
INCR_LUA = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n"


def _incr_script():
    """The Lua counter on the default cache's Redis (kept on the cache object), or None when it is not Redis."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    script = getattr(backend, "_datas_incr_script", None)
    if script is None:
        script = backend._datas_incr_script = backend._cache.get_client(write=True).register_script(INCR_LUA)
    return script


def count_in_window(key: str, window_s: int, now: float | None = None) -> tuple[int, float]:
    """Add one to the counter of ``key`` for the current window; (count so far, seconds left)."""
    now = time.time() if now is None else now
    window = int(now // window_s)
    name = f"throttle:{key}:{window}"
    script = _incr_script()
    if script is not None:
        count = int(script(keys=[cache.make_and_validate_key(name)], args=[window_s + 1]))
        return count, (window + 1) * window_s - now
    cache.add(name, 0, timeout=window_s + 1)
    try:
        count = cache.incr(name)
    except ValueError:  # expired between add and incr: this request opens the window again
        cache.add(name, 1, timeout=window_s + 1)
        count = 1
    return count, (window + 1) * window_s - now


def counted_key(scope: str) -> str:
    """Where a request's META holds a count already taken for ``scope`` (scheduling.poll's fast path)."""
    return f"datas.throttle.{scope}"


class WindowThrottle(BaseThrottle):
    """A fixed-window budget, ``rate`` per identity; subclasses say whose requests count."""

    scope = ""

    def rate(self) -> str | None:
        raise NotImplementedError

    def identity(self, request) -> str | None:
        """Who spends the budget, or None when this throttle does not apply."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        rate, ident = self.rate(), self.identity(request)
        if not rate or ident is None:
            return True
        allowed, window_s = parse_rate(rate)
        counted = request.META.get(counted_key(self.scope))
        count, self._wait = counted or count_in_window(f"{self.scope}:{ident}", window_s)
        return count <= allowed

    def wait(self) -> float:
        return math.ceil(self._wait)


class AgentRateThrottle(WindowThrottle):
    """Per site key (``DATAS_AGENT_THROTTLE_RATE``), read per request so it can change at run time."""

    scope = "agent"

    def rate(self) -> str:
        return settings.DATAS_AGENT_THROTTLE_RATE

    def identity(self, request) -> str | None:
        from network.api import is_agent

        return str(request.auth.pk) if is_agent(request) else None


class PersonRateThrottle(WindowThrottle):
    """Per person, whether by session or personal token (``DATAS_PERSON_THROTTLE_RATE``)."""

    scope = "person"

    def rate(self) -> str:
        return settings.DATAS_PERSON_THROTTLE_RATE

    def identity(self, request) -> str | None:
        from network.api import is_agent

        user = getattr(request, "user", None)
        if is_agent(request) or not (user and user.is_authenticated):
            return None
        return str(user.pk)


def client_address(request) -> str:
    """The caller's address: ``REMOTE_ADDR`` (a proxy in front sets it; see the README)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def refuse_if_blocked(request) -> None:
    """429 before any key is checked while this address is waiting after failed attempts."""
    until = cache.get(f"authblock:{client_address(request)}")
    if until and until > time.time():
        raise exceptions.Throttled(wait=math.ceil(until - time.time()),
                                   detail="too many failed authentication attempts from this address")


def record_failure(request) -> float:
    """Count one failed authentication; returns the wait now imposed on the address (0: none)."""
    address = client_address(request)
    failures, _ = count_in_window(f"authfail:{address}", AUTH_WINDOW_S)
    over = failures - settings.DATAS_AUTH_FAILURES_ALLOWED
    if over <= 0:
        return 0.0
    wait = min(2.0 ** (over - 1), AUTH_BLOCK_MAX_S)
    cache.set(f"authblock:{address}", time.time() + wait, timeout=math.ceil(wait) + 1)
    return wait
