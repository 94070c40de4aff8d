"""The time zones the app accepts, offers and stores: pytz's, pinned, canonical by CLDR."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import pytz
from babel import Locale
from babel.core import get_global
from babel.dates import NO_INHERITANCE_MARKER


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


@cache
def _cldr_keys() -> dict[str, str]:
    """Canonical zone names to the older names CLDR's locale data is still filed under.

    Babel's aliases point ``Asia/Calcutta`` to ``Asia/Kolkata``, but its names of places and
    zones are kept under ``Asia/Calcutta``: asked about ``Asia/Kolkata`` it finds none.
    """
    filed = set(get_global("meta_zones")) | set(Locale("en").time_zones)
    aliases: Mapping[str, str] = get_global("zone_aliases")
    keys = {zone: alias for alias, zone in aliases.items() if alias in filed and zone not in filed}
    # CLDR names Coordinated Universal Time under Etc/UTC, of which UTC is the alias.
    return {**keys, "UTC": "Etc/UTC"}


def _named(text: str | None) -> str | None:
    return text if text and text != NO_INHERITANCE_MARKER else None


@cache
def _zone_countries() -> dict[str, str]:
    return {zone: code for code, zones in pytz.country_timezones.items() for zone in zones}


def zone_country(zone: str) -> str | None:
    """The code of the country a place's zone is in (``JP``), if it is in one."""
    return _zone_countries().get(zone)


def zone_city(zone: str, locale: Locale) -> str:
    """The place a zone is named after, in ``locale``'s language ("Le Caire", "طوكيو")."""
    key = _cldr_keys().get(zone, zone)
    city = _named(locale.time_zones.get(key, {}).get("city"))
    return city or key.rpartition("/")[2].replace("_", " ")


def zone_name(zone: str, locale: Locale) -> str | None:
    """The zone's own name in ``locale``'s language ("heure du Japon"), if CLDR has one.

    Its name for the time all year (generic) where it has one, else its standard time; a
    zone of no wider region is named after its country ("India Time").
    """
    key = _cldr_keys().get(zone, zone)
    names = locale.time_zones.get(key, {}).get("long", {})
    metazone = get_global("meta_zones").get(key)
    if not (names.get("generic") or names.get("standard")) and metazone:
        names = locale.meta_zones.get(metazone, {}).get("long", {})
    name = _named(names.get("generic")) or _named(names.get("standard"))
    if name:
        return name
    country = zone_country(zone)
    territory = locale.territories.get(country) if country else None
    return str(locale.zone_formats["region"] % territory) if territory else None


def zone_label(zone: str, locale: Locale) -> str:
    """How people know a zone: "Japan Time (Tokyo)", "Coordinated Universal Time"."""
    city = zone_city(zone, locale)
    name = zone_name(zone, locale)
    if not name:
        return city
    # UTC is no place: "Coordinated Universal Time" alone.
    if city in name or "/" not in zone:
        return name
    # CLDR's pattern for "zone (city)": Japanese writes full-width brackets.
    return str(locale.zone_formats["fallback"] % {"0": city, "1": name})
