"""``flask user ...`` and ``flask preferences ...``."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from app.api import openapi
from app.extensions import db
from app.models import User
from app.preferences import schema
from tests.conftest import AuthActions


def test_create_user_with_password_option(runner: FlaskCliRunner, app: Flask) -> None:
    result = runner.invoke(
        args=["user", "create", "Cli@Example.com", "--password", "long enough pw"]
    )
    assert result.exit_code == 0, result.output
    assert "Created user cli@example.com" in result.output
    with app.app_context():
        assert db.session.scalar(select(User.email)) == "cli@example.com"


def test_create_user_prompts_for_password(runner: FlaskCliRunner, client, app: Flask) -> None:
    result = runner.invoke(
        args=["user", "create", "prompted@example.com"], input="long enough pw\nlong enough pw\n"
    )
    assert result.exit_code == 0, result.output
    assert AuthActions(client).login("prompted@example.com", "long enough pw").status_code == 303


def test_create_user_refuses_duplicates_and_short_passwords(
    runner: FlaskCliRunner, user: int
) -> None:
    result = runner.invoke(
        args=["user", "create", "user1@example.com", "--password", "long enough pw"]
    )
    assert result.exit_code == 1
    assert "already exists" in result.output
    result = runner.invoke(args=["user", "create", "x@example.com", "--password", "short"])
    assert result.exit_code == 1
    assert "at least 8 characters" in result.output


def test_demo_user_prints_working_credentials(runner: FlaskCliRunner, client) -> None:
    for _ in range(2):  # the second run resets the password of the existing user
        result = runner.invoke(args=["user", "demo"])
        assert result.exit_code == 0, result.output
    email, password = result.output.split("Demo user: ")[1].split("  password: ")
    assert AuthActions(client).login(email.strip(), password.strip()).status_code == 303


def test_deactivate_and_activate(runner: FlaskCliRunner, client, user: int) -> None:
    auth = AuthActions(client)
    assert auth.login().status_code == 303
    assert runner.invoke(args=["user", "deactivate", "user1@example.com"]).exit_code == 0
    assert client.get("/settings").status_code == 302
    assert auth.login().status_code == 422
    assert runner.invoke(args=["user", "activate", "user1@example.com"]).exit_code == 0
    assert auth.login().status_code == 303
    result = runner.invoke(args=["user", "deactivate", "nobody@example.com"])
    assert result.exit_code == 1 and "No user" in result.output


def test_preferences_docs_writes_and_checks(runner: FlaskCliRunner, tmp_path: Path) -> None:
    output = tmp_path / "preferences.md"
    document = tmp_path / "openapi.json"
    paths = ["--output", str(output), "--openapi-output", str(document)]
    result = runner.invoke(args=["preferences", "docs", "--check", *paths])
    assert result.exit_code == 1 and "out of date" in result.output
    assert str(document) in result.output
    assert runner.invoke(args=["preferences", "docs", *paths]).exit_code == 0
    assert output.read_text() == schema.markdown_reference()
    assert json.loads(document.read_text()) == openapi.document()
    assert document.read_text().endswith("}\n")
    result = runner.invoke(args=["preferences", "docs", "--check", *paths])
    assert result.exit_code == 0 and "up to date" in result.output
    document.write_text(document.read_text().replace("MIT", "GPL"))
    result = runner.invoke(args=["preferences", "docs", "--check", *paths])
    assert (
        result.exit_code == 1
        and str(document) in result.output
        and str(output) not in result.output
    )
