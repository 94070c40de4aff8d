"""The settings service: merging, resets, versions, upgrades, bad input and concurrent writers."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from app.extensions import db
from app.models import User
from app.preferences import registry, service, storage, writes
from app.preferences import snapshot as snapshots
from app.preferences.registry import PREFERENCES
from app.preferences.validation import ValidationError


@pytest.fixture
def ctx(app: Flask) -> Iterator[Flask]:
    """Run the test body inside an app and request context."""
    with app.test_request_context():
        yield app


def stored(user_id: int) -> tuple[dict[str, Any], int]:
    """The raw preferences document and version straight from the database."""
    db.session.expire_all()
    row = db.session.execute(select(User.preferences, User.version).where(User.id == user_id)).one()
    db.session.rollback()
    return row.preferences, row.version


def test_new_user_reads_defaults(ctx: Flask, user: int) -> None:
    settings = snapshots.get_settings(user)
    assert settings.values == registry.defaults()
    assert settings.updated_at is None
    assert settings.as_json()["updated_at"] is None
    assert stored(user)[0] == {}


def test_partial_updates_merge_and_store_only_choices(ctx: Flask, user: int) -> None:
    service.update_settings(user, {"theme": "dark"})
    settings = service.update_settings(user, {"notifications.push": True})
    assert settings.values["theme"] == "dark"
    assert settings.values["notifications.push"] is True
    assert settings.values["locale"] == "en"
    document, _ = stored(user)
    assert document == {"_v": 1, "theme": "dark", "notifications.push": True}
    assert settings.updated_at is not None
    assert settings.as_json()["updated_at"].endswith("Z")


def test_every_write_changes_the_version_and_etag(ctx: Flask, user: int) -> None:
    first = snapshots.get_settings(user)
    second = service.update_settings(user, {"theme": "light"})
    third = service.update_settings(user, {"theme": "dark"})
    assert first.version < second.version < third.version
    assert len({first.etag, second.etag, third.etag}) == 3


def test_writing_the_same_values_changes_nothing(ctx: Flask, user: int) -> None:
    written = service.update_settings(user, {"theme": "dark"})
    again = service.update_settings(user, {"theme": "dark"})
    assert again.version == written.version


def test_null_resets_a_key(ctx: Flask, user: int) -> None:
    service.update_settings(user, {"theme": "dark", "locale": "de"})
    settings = service.update_settings(user, {"theme": None})
    assert settings.values["theme"] == "system"
    assert settings.values["locale"] == "de"
    assert "theme" not in stored(user)[0]


def test_reset_all_and_reset_some(ctx: Flask, user: int) -> None:
    changes = {"theme": "dark", "locale": "fr", "notifications.digest": "off"}
    service.update_settings(user, changes)
    some = service.reset_settings(user, ["theme", "notifications"])
    assert some.values["theme"] == "system"
    assert some.values["notifications.digest"] == "weekly"
    assert some.values["locale"] == "fr"
    everything = service.reset_settings(user)
    assert everything.values == registry.defaults()
    assert stored(user)[0] == {"_v": 1}


def test_reset_unknown_key_changes_nothing(ctx: Flask, user: int) -> None:
    service.update_settings(user, {"theme": "dark"})
    before = stored(user)
    with pytest.raises(ValidationError) as caught:
        service.reset_settings(user, ["theme", "nope"])
    assert "nope" in caught.value.errors
    assert stored(user) == before


def test_invalid_stored_values_read_as_defaults(ctx: Flask, user: int) -> None:
    bad = {"_v": 1, "locale": "tlh", "timezone": "Nowhere/Land", "theme": "dark"}
    db.session.execute(update(User).where(User.id == user).values(preferences=bad, version=9))
    db.session.commit()
    settings = service.update_settings(user, {"notifications.push": True})
    assert settings.values["locale"] == "en"
    assert settings.values["timezone"] == "UTC"
    assert settings.values["theme"] == "dark"


def test_version_zero_document_reads_and_upgrades_on_write(ctx: Flask, user: int) -> None:
    old = {"theme": "dark", "notifications": True}
    db.session.execute(update(User).where(User.id == user).values(preferences=old, version=5))
    db.session.commit()
    snapshot = snapshots.load_snapshot(user)
    assert snapshot is not None
    values = snapshot.settings.values
    assert values["theme"] == "dark"
    assert values["notifications.email"] is True
    assert values["notifications.push"] is True
    service.update_settings(user, {"notifications.digest": "daily"})
    assert stored(user)[0] == {
        "_v": 1,
        "theme": "dark",
        "notifications.email": True,
        "notifications.push": True,
        "notifications.digest": "daily",
    }


def test_stale_expected_version_is_refused(ctx: Flask, user: int) -> None:
    current = service.update_settings(user, {"theme": "dark"})
    with pytest.raises(writes.VersionMismatch) as caught:
        service.update_settings(user, {"theme": "light"}, expected_version=current.version - 1)
    assert caught.value.current.version == current.version
    assert snapshots.get_settings(user).values["theme"] == "dark"
    ok = service.update_settings(user, {"theme": "light"}, expected_version=current.version)
    assert ok.values["theme"] == "light"


def test_unknown_user(ctx: Flask) -> None:
    with pytest.raises(snapshots.UserNotFound):
        snapshots.get_settings(424242)
    with pytest.raises(snapshots.UserNotFound):
        service.update_settings(424242, {"theme": "dark"})


def test_a_bad_value_saves_nothing(ctx: Flask, user: int) -> None:
    service.update_settings(user, {"theme": "dark"})
    before = stored(user)
    with pytest.raises(ValidationError) as caught:
        service.update_settings(user, {"locale": "de", "notifications.email": "yes"})
    assert list(caught.value.errors) == ["notifications.email"]
    assert stored(user) == before


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
    | st.sampled_from(["dark", "light", "system", "de", "UTC", "Europe/Paris", "daily"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=12,
)
known_names = st.sampled_from(["theme", "locale", "timezone", "notifications", "x", ""])
documents = (
    st.dictionaries(
        known_names | st.text(max_size=20),
        json_values
        | st.dictionaries(st.sampled_from(["email", "push", "digest", "sms"]), json_values),
        max_size=5,
    )
    | json_values
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=documents, merge_patch=st.booleans())
def test_arbitrary_input_is_saved_whole_or_refused_whole(
    ctx: Flask, user: int, document: Any, merge_patch: bool
) -> None:
    before = stored(user)
    try:
        settings = service.update_from_document(user, document, merge_patch=merge_patch)
    except ValidationError as exc:
        assert exc.errors
        assert all(isinstance(key, str) and messages for key, messages in exc.errors.items())
        assert stored(user) == before
        return
    document_now, _ = stored(user)
    json.dumps(document_now, allow_nan=False)
    choices = storage.upgrade(document_now)
    assert all(registry.BY_KEY[key].check(value) is None for key, value in choices.items())
    assert settings.values == storage.effective(choices)


def _values_for(key: str) -> list[Any]:
    pref = registry.BY_KEY[key]
    if pref.type == "boolean":
        return [True, False]
    return list(pref.allowed()[:3])


def test_concurrent_writers_lose_no_update(ctx: Flask, app: Flask, user: int) -> None:
    """Six threads, one per key, each write their key 100 times; every last write survives."""
    rounds = 100
    start = threading.Barrier(len(PREFERENCES))
    errors: list[BaseException] = []
    last: dict[str, Any] = {}

    def writer(key: str) -> None:
        values = list(itertools.islice(itertools.cycle(_values_for(key)), rounds))
        last[key] = values[-1]
        try:
            with app.test_request_context():
                start.wait()
                for value in values:
                    service.update_settings(user, {key: value})
                db.session.remove()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(pref.key,)) for pref in PREFERENCES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    final = snapshots.load_snapshot(user)
    assert final is not None
    lost = {
        key: (final.choices.get(key), value)
        for key, value in last.items()
        if final.choices.get(key) != value
    }
    assert lost == {}
