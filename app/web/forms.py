"""The settings form, built from the preference registry rather than written key by key."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytz
from babel import Locale
from flask_babel import get_locale
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import BooleanField, Field, HiddenField, RadioField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import Select

from app.preferences import registry, validation, zones
from app.preferences.registry import PREFERENCES, Preference
from app.text import lazy_gettext, pgettext

#: What a checkbox may send for "on" and for "off"; anything else is a forged value.
TRUE_VALUES = frozenset({"y", "on", "true", "1"})
FALSE_VALUES = frozenset({"", "n", "off", "false", "0"})


class SwitchField(BooleanField):
    """A checkbox shown as an on/off switch; a value no checkbox sends is kept to fail."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Read "on", "off" (absent) or keep the raw string so validation reports it."""
        raw = str(valuelist[0]).lower() if valuelist else ""
        value: bool | str = raw
        if raw in TRUE_VALUES:
            value = True
        elif raw in FALSE_VALUES:
            value = False
        self.data = value


class ThemeField(RadioField):
    """The theme as a group of radio cards, each with a small preview of its palette."""


class CachedOptionsSelect(Select):
    """A ``<select>`` whose long option list is rendered once per language, then reused.

    Rendering some 600 time zones through WTForms took most of the settings page's time;
    the list changes only with the language and the attributes, so per request only the
    ``selected`` mark is applied.
    """

    def __init__(self) -> None:
        """Start with nothing rendered."""
        super().__init__()
        self._rendered: dict[tuple[str, str, tuple[tuple[str, Any], ...]], Markup] = {}

    def __call__(self, field: Field, **kwargs: Any) -> Markup:
        """The select with ``field.data`` selected."""
        # UTC offsets change twice a year, at an hour boundary.
        hour = datetime.now(UTC).strftime("%Y%m%d%H")
        key = (str(get_locale()), hour, tuple(sorted(kwargs.items())))
        unselected = self._rendered.get(key)
        if unselected is None:
            # One rendering per language is kept for the hour: pages in several languages
            # served in turn must not render the list again each time.
            self._rendered = {
                kept: html for kept, html in self._rendered.items() if kept[1] == hour
            }
            rendered: Markup = super().__call__(field, **kwargs)
            # WTForms writes attributes in name order: "selected" comes right before "value".
            unselected = rendered.replace(Markup(" selected value="), Markup(" value="))
            self._rendered[key] = unselected
        option = Markup(' value="{}">').format(field.data)
        chosen = Markup(' selected value="{}">').format(field.data)
        if option in unselected:
            return unselected.replace(option, chosen, 1)
        # A value that is valid but not offered (an administrative zone, saved by the API):
        # shown as it is, so that saving the page keeps it.
        extra = Markup('<option selected value="{0}">{0}</option>').format(field.data)
        return unselected.replace(Markup(">"), Markup(">") + extra, 1)


class TimeZoneField(SelectField):
    """A time zone select grouped by region, with the device's zone offered by script."""

    widget = CachedOptionsSelect()


#: Presentation overrides; every other preference is rendered from its type alone.
WIDGETS: dict[str, type[Field]] = {"theme": ThemeField}

#: Section headings for groups of dotted keys; ungrouped keys share "General".
SECTION_TITLES: dict[str | None, Any] = {
    None: lazy_gettext("General"),
    "notifications": lazy_gettext("Notifications"),
}


def _option_attributes(pref: Preference, value: str) -> dict[str, str]:
    """Extra attributes of one option: a language's name is marked up in that language."""
    return {"lang": value} if pref.options is registry.shipped_locales else {}


def _choices(pref: Preference) -> Callable[[], list[SelectChoice]]:
    """Allowed values with their labels, built per form so labels follow the language."""

    def choices() -> list[SelectChoice]:
        return [
            SelectChoice(value, pref.label_for(value), _option_attributes(pref, value))
            for value in pref.allowed()
        ]

    return choices


@cache
def _zones_by_region() -> tuple[tuple[str | None, tuple[str, ...]], ...]:
    """Offered zones grouped by the part before the first "/", zones without one (UTC) last."""
    regions: dict[str | None, list[str]] = {}
    for zone in zones.canonical_time_zones():
        region, slash, _ = zone.partition("/")
        regions.setdefault(region if slash else None, []).append(zone)
    ordered = sorted(regions.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return tuple((region, tuple(zones)) for region, zones in ordered)


def _region_label(region: str | None) -> str:
    """The heading of a group of zones, named by the first part of their IANA names."""
    # The context is written out in each call: extraction reads only literal strings.
    labels = {
        "Africa": pgettext("time zone region", "Africa"),
        "America": pgettext("time zone region", "Americas"),
        "Antarctica": pgettext("time zone region", "Antarctica"),
        "Arctic": pgettext("time zone region", "Arctic"),
        "Asia": pgettext("time zone region", "Asia"),
        "Atlantic": pgettext("time zone region", "Atlantic Ocean"),
        "Australia": pgettext("time zone region", "Australia"),
        "Europe": pgettext("time zone region", "Europe"),
        "Indian": pgettext("time zone region", "Indian Ocean"),
        "Pacific": pgettext("time zone region", "Pacific Ocean"),
    }
    return labels.get(region or "", pgettext("time zone region", "Other"))


@cache
def _zone_aliases_by_zone() -> dict[str, str]:
    """The legacy names of each offered zone, space-separated, for the browser's suggestion."""
    found: dict[str, list[str]] = {}
    for alias in zones.time_zones():
        zone = zones.canonical_zone(alias)
        if zone != alias:
            found.setdefault(zone, []).append(alias)
    return {zone: " ".join(sorted(aliases)) for zone, aliases in found.items()}


def utc_offset(zone: str, moment: datetime) -> str:
    """``UTC+09:00``: the zone's offset at ``moment``, as people compare zones."""
    offset = moment.astimezone(pytz.timezone(zone)).strftime("%z")
    return f"UTC{offset[0]}{offset[1:3]}:{offset[3:]}"


def zone_choices() -> list[SelectChoice]:
    """Time zone options by region, in the request's language; see ``_zone_choices``."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return _zone_choices(str(get_locale() or "en"), hour)


@functools.cache
def _zone_names(locale: str) -> tuple[tuple[str, str, dict[str, str], str], ...]:
    """Each offered zone's name, search terms and group heading in one language.

    Some 400 names from CLDR take a while to look up, and they never change: once per
    language per process. Each option carries what else the searchable picker
    (``static/js/zone-picker.js``) matches: the country, the English names on a page in
    another language, and the legacy names the browser may report.
    """
    reader = Locale.parse(locale)
    english = Locale.parse("en")
    aliases = _zone_aliases_by_zone()
    names = []
    for region, members in _zones_by_region():
        heading = _region_label(region)
        for zone in members:
            code = zones.zone_country(zone)
            attributes = {}
            country = reader.territories.get(code, "") if code else ""
            if country:
                attributes["data-country"] = country
            if locale != "en":
                # People also look for a place by its English name.
                also = [
                    english.territories.get(code, "") if code else "",
                    zones.zone_label(zone, english),
                ]
                attributes["data-also"] = " ".join(part for part in also if part)
            if zone in aliases:
                attributes["data-aliases"] = aliases[zone]
            names.append((zone, zones.zone_label(zone, reader), attributes, heading))
    return tuple(names)


@functools.lru_cache(maxsize=16)
def _zone_choices(locale: str, hour: datetime) -> list[SelectChoice]:
    """Time zone options by region: the zone as people know it, and its offset now."""
    return [
        SelectChoice(zone, f"{name} · {utc_offset(zone, hour)}", attributes, heading)
        for zone, name, attributes, heading in _zone_names(locale)
    ]


def _field(pref: Preference) -> Field:
    """The unbound form field of one preference."""
    common: dict[str, Any] = {
        "label": pref.label,
        "description": pref.help,
    }
    if pref.type == "boolean":
        return SwitchField(**common)
    if pref.options is zones.time_zones:
        return TimeZoneField(
            choices=zone_choices,
            validate_choice=False,
            # static/js/zone-picker.js turns it into a searchable list.
            render_kw={"data-zone-picker": ""},
            **common,
        )
    # Allowed values are checked by the registry, with its messages, not by WTForms.
    widget = WIDGETS.get(pref.key, SelectField)
    return widget(choices=_choices(pref), validate_choice=False, **common)


@dataclass(frozen=True)
class Section:
    """A titled group of fields, shown as one card."""

    id: str
    title: str
    fields: list[Field]


class SettingsFormBase(FlaskForm):
    """Behaviour shared by the built settings form; the fields come from the registry."""

    #: The values the page was rendered with (JSON, dotted keys), so a no-script save can
    #: tell what the person changed on it from what changed elsewhere meanwhile.
    shown = HiddenField()

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> SettingsFormBase:
        """A form showing effective settings (dotted keys), ignoring any request body."""
        data: dict[str, Any] = {
            pref.field_name: pref.normalized(values[pref.key]) for pref in PREFERENCES
        }
        data["shown"] = json.dumps({pref.key: values[pref.key] for pref in PREFERENCES})
        return cls(formdata=None, data=data)

    def seen(self) -> dict[str, Any] | None:
        """The values the submitted page showed, or ``None`` if it did not say (older page)."""
        try:
            shown = json.loads(self.shown.data or "")
        except ValueError:
            return None
        if not isinstance(shown, dict):
            return None
        return {pref.key: shown[pref.key] for pref in PREFERENCES if pref.key in shown}

    def edited(self) -> dict[str, Any]:
        """What the person changed on the page: submitted values that differ from the shown.

        Without a record of what was shown every submitted value counts as changed.
        """
        seen = self.seen() or {}
        return {
            key: value
            for key, value in self.changes().items()
            if key not in seen or value != seen[key] or type(value) is not type(seen[key])
        }

    def preference_fields(self) -> Iterator[tuple[Preference, Field]]:
        """Each preference with its bound field, in registry order."""
        for pref in PREFERENCES:
            yield pref, self[pref.field_name]

    def sections(self) -> list[Section]:
        """Fields grouped by the first part of their dotted key, in registry order."""
        grouped: dict[str | None, list[Field]] = {}
        for pref, field in self.preference_fields():
            grouped.setdefault(pref.group, []).append(field)
        return [
            Section(
                id=group or "general",
                title=str(SECTION_TITLES.get(group, group.capitalize() if group else "")),
                fields=fields,
            )
            for group, fields in grouped.items()
        ]

    def unknown_fields(self, names: Iterable[str]) -> list[str]:
        """Submitted names that are not fields of this form."""
        return sorted(set(names) - {field.name for field in self})

    def changes(self) -> dict[str, Any]:
        """Every preference as submitted, keyed by dotted key."""
        return {pref.key: field.data for pref, field in self.preference_fields()}

    def add_errors(self, errors: validation.Errors) -> None:
        """Put the service's errors (dotted keys) beside their fields."""
        for key, messages in errors.items():
            pref = registry.BY_KEY.get(key)
            if pref is None:
                self.form_errors.extend(messages)
            else:
                self[pref.field_name].errors = [*self[pref.field_name].errors, *messages]


def build_settings_form() -> type[SettingsFormBase]:
    """A form class with one field per preference, named by ``Preference.field_name``."""
    form_class = type("SettingsForm", (SettingsFormBase,), {"__doc__": "The settings form."})
    for pref in PREFERENCES:
        setattr(form_class, pref.field_name, _field(pref))
    return form_class


SettingsForm: type[SettingsFormBase] = build_settings_form()


class _WithoutToken:
    """Form options for a form inside a request CSRFProtect has already checked."""

    csrf = False


@cache
def field_form(field_name: str) -> type[FlaskForm]:
    """A form of one preference's field alone: what an htmx save reads and answers with.

    Building the whole settings form (every field, each asking Flask-Babel for its
    translations) to read or show one field cost as much as the write itself.
    """
    pref = registry.BY_FIELD_NAME[field_name]
    return type(
        f"{field_name}Form", (FlaskForm,), {field_name: _field(pref), "Meta": _WithoutToken}
    )


def one_field(field_name: str, values: Mapping[str, Any]) -> FlaskForm:
    """The form of ``field_name`` alone, showing its value among ``values`` (dotted keys)."""
    pref = registry.BY_FIELD_NAME[field_name]
    return field_form(field_name)(
        formdata=None, data={field_name: pref.normalized(values[pref.key])}
    )
