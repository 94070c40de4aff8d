"""The shipped catalogues are complete, and every page really speaks the user's language."""

from __future__ import annotations

import gettext as gettext_module
import html
import json
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po, write_po
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale

from app.i18n import text_direction
from app.preferences import registry, service, validation
from app.text import alternatives, gettext
from tests.conftest import AuthActions, csrf_token

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "app" / "translations"
#: Every catalogue under app/translations, found as the app finds them: a new language is
#: checked by every test below without being named here.
LOCALES = tuple(
    sorted(path.parent.parent.name for path in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))
)

#: What must come through a translation unchanged: %-placeholders, HTML tags and entities,
#: and literal JSON such as ``{"keys": [...]}``.
PRESERVED = re.compile(r"%\(\w+\)[sdif]|%%|<[^>]+>|&#?\w+;|\{[^{}]*\}")

#: Words that would give away untranslated English sentences in a page's visible text.
ENGLISH_WORDS = re.compile(r"\b(?:the|your|you|and|is|are|was|were|to|of|with|this|not|could)\b")

#: Extraction exactly as ``make messages`` does it (babel.cfg, and the Makefile's -k options).
METHOD_MAP = [("app/**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "_l": None, "lazy_pgettext": ((1, "c"), 2)}

# Every test below that needs an app runs on SQLite only: the language layer does not
# depend on the database, and PostgreSQL is covered by the rest of the suite.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def load(locale: str) -> Catalog:
    """The catalogue of ``locale`` as committed."""
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def source_ids() -> set[tuple[str | None, str]]:
    """Every (context, msgid) the app and its templates use now, extracted from the sources."""
    found: set[tuple[str | None, str]] = set()
    for _filename, _lineno, message, _comments, context in extract_from_dir(
        str(ROOT), METHOD_MAP, keywords=KEYWORDS
    ):
        found.add((context, message[0] if isinstance(message, tuple) else message))
    return found


def single_number_forms(catalog: Catalog) -> set[int]:
    """Plural forms chosen for one number only (Arabic's zero, one and two): a translation
    may spell that number out ("دقيقتين") instead of keeping ``%(num)d``."""
    form_of = gettext_module.c2py(catalog.plural_expr)
    numbers: dict[int, set[int]] = {}
    for number in range(1000):
        numbers.setdefault(form_of(number), set()).add(number)
    return {form for form, found in numbers.items() if len(found) == 1}


def catalogue_ids(catalog: Catalog) -> set[tuple[str | None, str]]:
    """The (context, msgid) of every message of ``catalog``."""
    return {
        (message.context, message.id[0] if message.pluralizable else message.id)
        for message in catalog
        if message.id
    }


def forms(message: Message) -> list[str]:
    """Every msgstr of a message: one, or one per plural form."""
    return list(message.string) if isinstance(message.string, tuple | list) else [message.string]


def preserved(text: str) -> list[str]:
    """The tokens of ``text`` that a translation must keep, sorted."""
    return sorted(PRESERVED.findall(text))


def visible_text(page: str) -> str:
    """What a person reads: no tags, attributes, scripts, styles or inert templates.

    The time zone options are left out too: IANA names ("Mexico/General") are not translated.
    """
    page = re.sub(r"(?is)<(script|style|template|svg|noscript)\b.*?</\1>", " ", page)
    page = re.sub(r'(?is)<select\b[^>]*name="timezone".*?</select>', " ", page)
    page = re.sub(r"(?s)<!--.*?-->", " ", page)
    page = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", html.unescape(page)).strip()


def english_left(text: str, catalog: Catalog) -> list[str]:
    """English msgids (those whose translation differs) that appear in ``text`` as words."""
    left = []
    for message in catalog:
        if not message.id or message.pluralizable or "%" in message.id:
            continue
        if forms(message)[0] == message.id:
            continue  # the same word in both languages ("Dashboard" in German)
        if re.search(rf"(?<!\w){re.escape(message.id)}(?!\w)", text):
            left.append(message.id)
    return left


def translate(app: Flask, locale: str, message: str, **variables: object) -> str:
    """``message`` as the app renders it in ``locale``."""
    with app.test_request_context(), force_locale(locale):
        return gettext(message, **variables)


def set_locale(app: Flask, user_id: int, locale: str) -> None:
    with app.test_request_context():
        service.update_settings(user_id, {"locale": locale})


# --- The catalogues ------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogue_header(locale: str) -> None:
    catalog = load(locale)
    assert str(catalog.locale) == locale
    assert catalog.mime_headers  # parsed
    headers = dict(catalog.mime_headers)
    assert headers["Language"] == locale
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "LANGUAGE" not in headers["Language-Team"]
    # As many plural forms as the language has (Arabic six), chosen as CLDR says.
    plural = get_plural(locale)
    assert (catalog.num_plurals, catalog.plural_expr) == (plural.num_plurals, plural.plural_expr)
    assert headers["Plural-Forms"] == plural.plural_forms
    assert not catalog.fuzzy


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogue_is_complete(locale: str) -> None:
    catalog = load(locale)
    nplurals = get_plural(locale).num_plurals
    spelled_out = single_number_forms(catalog)
    untranslated, fuzzy, broken = [], [], []
    for message in catalog:
        if not message.id:
            continue
        if message.fuzzy:
            fuzzy.append(message.id)
        strings = forms(message)
        if not all(strings) or (message.pluralizable and len(strings) != nplurals):
            untranslated.append(message.id)
            continue
        # Each plural form keeps the placeholders (one-form languages use the plural text),
        # but a form for a single number may say the number in words.
        expected = preserved(message.id[1] if message.pluralizable else message.id)
        for form, text in enumerate(strings):
            found = preserved(text)
            if message.pluralizable and form in spelled_out and "%(num)d" not in found:
                found = sorted([*found, "%(num)d"])
            if found != expected:
                broken.append(message.id)
    assert not untranslated, f"{locale}: untranslated {untranslated}"
    assert not fuzzy, f"{locale}: fuzzy {fuzzy}"
    assert not broken, f"{locale}: placeholders or markup changed in {broken}"


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogue_covers_every_string_in_the_sources(locale: str) -> None:
    """A string added to the code without ``make messages`` and a translation fails here."""
    missing = sorted(source_ids() - catalogue_ids(load(locale)), key=str)
    assert not missing, f"{locale}: run `make messages` and translate {missing}"


def test_template_is_extracted_from_the_sources_as_they_are(tmp_path: Path) -> None:
    """messages.pot is what ``make messages`` extracts now, written to a temporary file."""
    extracted = Catalog()
    for _filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), METHOD_MAP, keywords=KEYWORDS
    ):
        extracted.add(message, lineno=lineno, context=context)
    fresh = tmp_path / "messages.pot"
    with fresh.open("wb") as handle:
        write_po(handle, extracted, omit_header=True)
    with fresh.open("rb") as handle:
        fresh_ids = catalogue_ids(read_po(handle))
    with (TRANSLATIONS / "messages.pot").open("rb") as handle:
        committed_ids = catalogue_ids(read_po(handle))
    assert fresh_ids == source_ids()
    assert sorted(fresh_ids - committed_ids, key=str) == [], "run `make messages`"
    assert sorted(committed_ids - fresh_ids, key=str) == [], "run `make messages`"


def test_catalogues_are_shipped_as_languages() -> None:
    assert set(LOCALES) >= {"ar", "de", "fr", "ja"}
    assert registry.shipped_locales() == ("en", *LOCALES)
    # Language names come from Babel in each language's own name, not from the catalogue.
    names = {code: registry.locale_name(code) for code in ("ar", "de", "fr", "ja")}
    assert names == {"ar": "العربية", "de": "Deutsch", "fr": "Français", "ja": "日本語"}


def test_one_english_word_with_two_meanings_has_two_translations() -> None:
    """ "Other" zones and an "Other" source of a change are different words in Arabic."""
    catalog = load("ar")
    region = catalog.get("Other", context="time zone region")
    source = catalog.get("Other", context="source of a change")
    assert region is not None and source is not None
    assert region.string != source.string


# --- The running app -----------------------------------------------------------------------

#: Per page, strings the page must show in each language (as the catalogue translates them).
EXPECTED = {
    "/settings": ["Settings", "Sign out", "Theme", "Time zone", "Notifications", "Save settings"],
    "/dashboard": ["Dashboard", "Your settings", "Theme", "Sync", "Email notifications"],
}


@sqlite_only
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("path", ["/settings", "/dashboard"])
def test_signed_in_pages_speak_the_users_language(
    app: Flask, signed_in: FlaskClient, user: int, locale: str, path: str
) -> None:
    set_locale(app, user, locale)
    catalog = load(locale)
    response = signed_in.get(path, headers={"Accept-Language": "en"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<html lang="{locale}" dir="{text_direction(locale)}"' in page
    text = visible_text(page)
    for message in EXPECTED[path]:
        assert translate(app, locale, message) in text, message
    assert not english_left(text, catalog), f"English left on {path} in {locale}"
    sentences = text.replace("user1@example.com", "")
    assert not ENGLISH_WORDS.findall(sentences), f"{locale} {path}: {sentences}"


@sqlite_only
@pytest.mark.parametrize("locale", LOCALES)
def test_settings_page_shows_choices_and_times_in_the_language(
    app: Flask, signed_in: FlaskClient, user: int, locale: str
) -> None:
    set_locale(app, user, locale)
    page = signed_in.get("/settings").get_data(as_text=True)
    for label in ("Light", "Dark", "System", "Weekly", "Daily", "Off", "General"):
        assert translate(app, locale, label) in visible_text(page), label
    # Each language in its own name, marked up in that language.
    assert re.search(r'<option lang="de"[^>]*>Deutsch</option>', page)
    assert re.search(r'<option lang="ja"[^>]*>日本語</option>', page)
    assert re.search(r'<option lang="ar"[^>]*>العربية</option>', page)
    expected = {
        "ar": "آخر حفظ في",
        "de": "Zuletzt gespeichert am",
        "fr": "Dernier enregistrement le",
        "ja": "最終保存日時",
    }
    assert expected[locale] in visible_text(page)


@sqlite_only
@pytest.mark.parametrize("locale", LOCALES)
def test_sign_in_page_and_sign_out_message_in_the_browsers_language(
    app: Flask, client: FlaskClient, auth: AuthActions, user: int, locale: str
) -> None:
    """Signed out, the browser's language is used; the user's own after signing in."""
    set_locale(app, user, locale)
    catalog = load(locale)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = f"{locale},en;q=0.5"
    page = client.get("/login").get_data(as_text=True)
    assert f'<html lang="{locale}"' in page
    text = visible_text(page)
    for message in ("Sign in", "Email", "Password", "Keep me signed in on this device"):
        assert translate(app, locale, message) in text, message
    assert not english_left(text, catalog)
    assert not ENGLISH_WORDS.findall(text), text

    assert auth.login().status_code == 303
    response = auth.logout()
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert translate(app, locale, "You have been signed out.") in visible_text(page)


@sqlite_only
@pytest.mark.parametrize("locale", LOCALES)
def test_sign_in_errors_are_translated(app: Flask, client: FlaskClient, locale: str) -> None:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = locale
    data = {"email": "nobody@example.com", "password": "wrong password"}
    response = client.post("/login", data={**data, "csrf_token": csrf_token(client)})
    assert response.status_code == 422
    assert translate(app, locale, "Wrong email or password.") in response.get_data(as_text=True)

    data = {"email": "not an address", "password": "short", "confirm": "other"}
    response = client.post("/register", data={**data, "csrf_token": csrf_token(client)})
    text = visible_text(response.get_data(as_text=True))
    assert response.status_code == 422
    for message in ("Enter a valid email address.", "The passwords differ."):
        assert translate(app, locale, message) in text, message
    assert not ENGLISH_WORDS.findall(text), text


@sqlite_only
@pytest.mark.parametrize("locale", LOCALES)
def test_api_validation_errors_are_translated(
    app: Flask, signed_in: FlaskClient, user: int, locale: str
) -> None:
    set_locale(app, user, locale)
    headers = {"X-CSRFToken": csrf_token(signed_in, "/settings")}
    response = signed_in.put(
        "/api/user/settings", json={"theme": "neon", "timezone": "Mars/Base"}, headers=headers
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    allowed = translate(app, locale, "Must be one of: %(allowed)s.", allowed="light, dark, system")
    assert errors["theme"] == [allowed]
    assert allowed != "Must be one of: light, dark, system."
    zone = translate(
        app,
        locale,
        "Unknown time zone %(value)s; use an IANA name such as Europe/Berlin.",
        value=json.dumps("Mars/Base"),
    )
    assert errors["timezone"] == [zone]
    assert '"Mars/Base"' in zone and "Unknown" not in zone


@sqlite_only
@pytest.mark.parametrize("locale", LOCALES)
def test_registry_messages_follow_the_forced_locale(app: Flask, locale: str) -> None:
    with app.test_request_context(), force_locale(locale):
        with pytest.raises(validation.ValidationError) as raised:
            validation.validate({"theme": "neon", "notifications.email": "yes", "nope": 1})
        english = {"Must be true or false.", "Unknown setting."}
        messages = {text for texts in raised.value.errors.values() for text in texts}
        assert len(messages) == 3
        assert not messages & english
        assert str(registry.BY_KEY["timezone"].label) == gettext("Time zone") != "Time zone"


@sqlite_only
@pytest.mark.parametrize("locale", LOCALES)
def test_htmx_error_is_announced_in_the_language(
    app: Flask, signed_in: FlaskClient, user: int, locale: str
) -> None:
    set_locale(app, user, locale)
    headers = {"HX-Request": "true", "X-CSRFToken": csrf_token(signed_in, "/settings")}
    response = signed_in.post("/settings/theme", data={"theme": "neon"}, headers=headers)
    assert response.status_code == 422
    # A page names the choices as it shows them; the API lists the values (above).
    labels = [translate(app, locale, label) for label in ("Light", "Dark", "System")]
    with app.test_request_context(), force_locale(locale):
        reason = gettext("Must be one of: %(allowed)s.", allowed=alternatives(labels))
    announced = translate(
        app,
        locale,
        "%(setting)s was not saved: %(reason)s",
        setting=translate(app, locale, "Theme"),
        reason=reason,
    )
    assert announced in html.unescape(response.get_data(as_text=True))


@sqlite_only
@pytest.mark.parametrize(("before", "after"), [("de", "fr"), ("fr", "ja"), ("ja", "de")])
def test_changing_the_language_rerenders_in_the_new_one(
    app: Flask, signed_in: FlaskClient, user: int, before: str, after: str
) -> None:
    set_locale(app, user, before)
    data = {
        "csrf_token": csrf_token(signed_in, "/settings"),
        "theme": "system",
        "locale": after,
        "timezone": "Europe/Paris",
        "notifications__email": "y",
        "notifications__digest": "weekly",
    }
    response = signed_in.post("/settings", data=data, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<html lang="{after}"' in page
    assert translate(app, after, "Saved") in visible_text(page)
    assert translate(app, before, "Save settings") not in page


@sqlite_only
def test_the_form_names_refused_choices_by_their_labels(
    app: Flask, signed_in: FlaskClient, user: int
) -> None:
    set_locale(app, user, "ar")
    data = {
        "csrf_token": csrf_token(signed_in, "/settings"),
        "theme": "neon",
        "locale": "ar",
        "timezone": "UTC",
        "notifications__digest": "hourly",
    }
    response = signed_in.post("/settings", data=data)
    text = visible_text(response.get_data(as_text=True))
    assert response.status_code == 422
    assert "يجب أن تكون إحدى القيم التالية: فاتح أو داكن أو حسب الجهاز." in text
    assert "يجب أن تكون إحدى القيم التالية: متوقف أو يومي أو أسبوعي." in text
    assert "light" not in text and "weekly" not in text


# --- Problem documents --------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize("locale", LOCALES)
def test_problem_documents_speak_the_browsers_language_when_signed_out(
    app: Flask, client: FlaskClient, locale: str
) -> None:
    response = client.get("/api/user/settings", headers={"Accept-Language": f"{locale},en;q=0.1"})
    body = response.get_json()
    assert response.status_code == 401
    assert body["type"] == "/api/problems/unauthorized"  # what clients match on stays
    assert body["title"] == translate(app, locale, "Not signed in") != "Not signed in"
    detail = translate(app, locale, "Sign in to use the API: no valid session was sent.")
    assert body["detail"] == detail != "Sign in to use the API: no valid session was sent."


@sqlite_only
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(
    ("body", "english"),
    [
        (b'{"theme": "dark"', "Expecting ',' delimiter"),
        (b'{"theme": "dark"} x', "Extra data"),
        (b"{theme: 1}", "Expecting property name"),
        (b'{"theme": "dark', "Unterminated string"),
        (b'{"theme": "\\q"}', "Invalid \\escape"),
        (b"", "Expecting value"),
    ],
)
def test_malformed_json_is_explained_in_the_users_language(
    app: Flask, signed_in: FlaskClient, user: int, locale: str, body: bytes, english: str
) -> None:
    set_locale(app, user, locale)
    headers = {"X-CSRFToken": csrf_token(signed_in, "/settings")}
    response = signed_in.put(
        "/api/user/settings", data=body, content_type="application/json", headers=headers
    )
    problem = response.get_json()
    assert response.status_code == 400
    assert problem["type"] == "/api/problems/malformed-json"
    assert problem["title"] == translate(app, locale, "Bad request") != "Bad request"
    assert english not in problem["detail"]
    assert "line 1" not in problem["detail"] and "Expecting" not in problem["detail"]
    # Where it went wrong is kept, as numbers in the sentence of the language.
    assert re.search(r"\b1\b", problem["detail"]), problem["detail"]
