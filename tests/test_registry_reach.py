"""One entry added to the registry reaches every client, with no other file changed.

The test copies the application (``app/``, ``templates/``, ``static/``) aside, adds two
preferences to the copy's ``PREFERENCES`` tuple (a choice and a grouped boolean) and nothing
else, and drives the copy in its own process: the settings page, the dashboard, the JSON
Schema, the OpenAPI document, the key reference and a save through the API. Nothing but the
registry entry may be needed, or a person adding a preference would have to know every other
file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

NEW_ENTRIES = """
    Preference(
        key="density",
        type="choice",
        default="comfortable",
        label=lazy_gettext("Density"),
        help=lazy_gettext("How much space there is between rows."),
        options=lambda: ("compact", "comfortable"),
    ),
    Preference(
        key="notifications.sms",
        type="boolean",
        default=False,
        label=lazy_gettext("Text messages"),
        help=lazy_gettext("Send me a text message for urgent notices."),
    ),
)

BY_KEY: dict[str, Preference]"""

#: Runs inside the copy: every client of the registry, on SQLite with the in-process cache.
PROBE = r"""
import json, sys
from app import create_app
from app.auth import service as auth
from app.preferences import schema

app = create_app({
    "TESTING": True, "SECRET_KEY": "reach", "WTF_CSRF_ENABLED": False,
    "SQLALCHEMY_DATABASE_URI": "sqlite:///" + sys.argv[1], "REDIS_URL": None,
})
with app.app_context():
    from app.extensions import db
    db.create_all()
    auth.create_user("reach@example.com", "correct horse battery")
client = app.test_client()
client.post("/login", data={"email": "reach@example.com", "password": "correct horse battery"})
new_values = {"density": "compact", "notifications": {"sms": True}}
saved = client.patch("/api/user/settings", json=new_values)
with app.test_request_context():
    reference = schema.markdown_reference()
print(json.dumps({
    "settings_page": client.get("/settings").get_data(as_text=True),
    "dashboard": client.get("/dashboard").get_data(as_text=True),
    "schema": client.get("/api/user/settings/schema").get_json(),
    "openapi": client.get("/api/openapi.json").get_json(),
    "reference": reference,
    "saved_status": saved.status_code,
    "saved": saved.get_json(),
    "bad": client.patch("/api/user/settings", json={"density": "huge"}).get_json(),
}))
"""


def run_copy_with_new_entries(tmp_path: Path) -> dict[str, Any]:
    copy = tmp_path / "copy"
    for folder in ("app", "templates", "static"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    registry = copy / "app" / "preferences" / "registry.py"
    source = registry.read_text()
    marker = "\n)\n\nBY_KEY: dict[str, Preference]"
    assert source.count(marker) == 1, "the registry's tuple no longer ends where expected"
    registry.write_text(source.replace(marker, NEW_ENTRIES))

    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    env["PYTHONPATH"] = str(copy)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "reach.db")],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return found


def test_a_new_registry_entry_reaches_every_client(tmp_path: Path) -> None:
    found = run_copy_with_new_entries(tmp_path)

    # The settings page offers both, with their labels, help and choices.
    page = found["settings_page"]
    for text in ("Density", "How much space there is between rows.", "Text messages"):
        assert text in page
    assert 'name="density"' in page and 'value="compact"' in page
    assert 'name="notifications__sms"' in page

    # The dashboard shows a row for each, with the value just saved.
    dashboard = found["dashboard"]
    assert '<dd data-key="density">compact</dd>' in dashboard
    assert 'data-key="notifications.sms" data-kind="boolean"' in dashboard
    assert "<dt>Density</dt>" in dashboard and "<dt>Text messages</dt>" in dashboard

    # The schema and the OpenAPI document describe them, with their defaults.
    properties = found["schema"]["properties"]
    assert properties["density"]["enum"] == ["compact", "comfortable"]
    assert properties["density"]["default"] == "comfortable"
    assert properties["notifications"]["properties"]["sms"]["type"] == "boolean"
    settings = found["openapi"]["components"]["schemas"]["Settings"]["properties"]
    assert settings["density"]["default"] == "comfortable"
    assert "sms" in settings["notifications"]["properties"]

    # The key reference lists them.
    assert "`density`" in found["reference"]
    assert "`notifications.sms`" in found["reference"]

    # The API stores them and refuses a value the entry does not allow, by its dotted key.
    assert found["saved_status"] == 200
    assert found["saved"]["density"] == "compact"
    assert found["saved"]["notifications"]["sms"] is True
    assert list(found["bad"]["errors"]) == ["density"]
    assert "compact, comfortable" in str(found["bad"]["errors"]["density"])
