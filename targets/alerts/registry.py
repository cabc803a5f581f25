"""The registry of alert sources: classes listed in ``settings.DATAS_ALERT_SOURCES``, loaded once."""
from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from targets.alerts.sources.base import BadPacket, Source


class UnknownSource(LookupError):
    """No registered source has that name, or recognises a packet."""


@cache
def _load(paths: tuple[str, ...]) -> dict[str, Source]:
    loaded: dict[str, Source] = {}
    for path in paths:
        cls = import_string(path)
        if not (isinstance(cls, type) and issubclass(cls, Source) and cls.name):
            raise TypeError(f"{path} is not an alert source class with a name")
        if cls.name in loaded:
            raise TypeError(f"two alert sources are called {cls.name!r}")
        loaded[cls.name] = cls()
    return loaded


def sources() -> dict[str, Source]:
    """Every registered source by name, in settings order."""
    return _load(tuple(settings.DATAS_ALERT_SOURCES))


def source_named(name: str) -> Source:
    try:
        return sources()[name]
    except KeyError:
        raise UnknownSource(f"no alert source {name!r}; known: {', '.join(sources())}") from None


def source_for(data: bytes) -> Source:
    """The source whose format ``data`` is in, judged by content (not by a file name)."""
    if not data.strip():
        raise BadPacket("the packet is empty")
    for source in sources().values():
        if source.sniff(data):
            return source
    raise UnknownSource(f"no alert source recognises a packet starting {data[:40]!r}")
