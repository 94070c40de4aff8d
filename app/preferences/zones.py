"""The time zones the app accepts, offers and stores: pytz's, pinned, canonical by CLDR."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import pytz
from babel.core import get_global


@cache
def time_zones() -> tuple[str, ...]:
    """IANA zone names every part of the app can use, sorted; computed once per process.

    They come from pytz, a pinned dependency, not from the host's zone files: Flask-Babel
    and Babel format every time with pytz, so a zone it lacks (``Factory``, ``localtime``)
    would break every page, and hosts with different zone files would accept different
    names.
    """
    return tuple(sorted(pytz.all_timezones_set))


@cache
def _time_zone_set() -> frozenset[str]:
    return frozenset(time_zones())


@cache
def canonical_time_zones() -> tuple[str, ...]:
    """The zones people choose from: one per place (zone.tab) and UTC, sorted.

    Legacy aliases (``Turkey``, ``US/Pacific``, ``Asia/Calcutta``) and administrative zones
    (``Etc/GMT+5``, which means UTC-5) are still accepted, but not offered.
    """
    places = {zone for zones in pytz.country_timezones.values() for zone in zones}
    return tuple(sorted((places | {"UTC"}) & _time_zone_set()))


@cache
def _zone_aliases() -> dict[str, str]:
    """Legacy zone names to the canonical zone of the same place (CLDR's list, via Babel)."""
    aliases: Mapping[str, str] = get_global("zone_aliases")
    canonical = set(canonical_time_zones())
    return {alias: zone for alias, zone in aliases.items() if zone in canonical}


def canonical_zone(name: str) -> str:
    """The canonical name of a zone: ``Asia/Calcutta`` reads ``Asia/Kolkata``."""
    return _zone_aliases().get(name, name)


def is_time_zone(name: str) -> bool:
    """Whether ``name`` is a zone the app accepts (fast: a set lookup)."""
    return name in _time_zone_set()
