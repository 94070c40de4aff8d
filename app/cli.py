"""Command-line tools: ``flask user ...`` and ``flask preferences ...``."""

from __future__ import annotations

import secrets
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from flask_babel import force_locale
from sqlalchemy import select

from app.api import openapi
from app.auth import passwords
from app.auth import service as auth
from app.extensions import db
from app.models import User
from app.preferences import account, history, schema

ROOT = Path(__file__).resolve().parent.parent
PREFERENCES_DOC = ROOT / "docs" / "preferences.md"
OPENAPI_DOC = ROOT / "docs" / "openapi.json"

user_cli = AppGroup("user", help="Manage user accounts.")
preferences_cli = AppGroup("preferences", help="Preference registry tools.")


@user_cli.command("create")
@click.argument("email")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Prompted for when not given.",
)
@click.option("--admin", is_flag=True, help="Let the user open the read-only admin pages.")
def create_user(email: str, password: str, admin: bool) -> None:
    """Create a user who can sign in with EMAIL."""
    # The same policy as the sign-up page, worded in English like the rest of the CLI.
    with force_locale("en"):
        found = passwords.problems(password, email)
    if found:
        raise click.ClickException(" ".join(found))
    try:
        user = auth.create_user(email, password, is_admin=admin)
    except auth.EmailTaken as exc:
        raise click.ClickException(f"A user with the email {email} already exists.") from exc
    role = "admin" if admin else "user"
    click.echo(f"Created {role} {user.email} (id {user.id}).")


def _find(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == auth.normalize_email(email)))
    if user is None:
        raise click.ClickException(f"No user with the email {email}.")
    return user


@user_cli.command("deactivate")
@click.argument("email")
def deactivate_user(email: str) -> None:
    """Stop EMAIL from signing in; open sessions end on their next request."""
    account.update_account(_find(email).id, active=False, sign_out=True)
    click.echo(f"Deactivated {email}.")


@user_cli.command("activate")
@click.argument("email")
def activate_user(email: str) -> None:
    """Let a deactivated EMAIL sign in again."""
    account.update_account(_find(email).id, active=True)
    click.echo(f"Activated {email}.")


@user_cli.command("promote")
@click.argument("email")
def promote_user(email: str) -> None:
    """Let EMAIL open the read-only admin pages, from their next request."""
    account.update_account(_find(email).id, is_admin=True)
    click.echo(f"{email} is now an admin.")


@user_cli.command("demote")
@click.argument("email")
def demote_user(email: str) -> None:
    """Take the admin pages away from EMAIL, from their next request."""
    account.update_account(_find(email).id, is_admin=False)
    click.echo(f"{email} is no longer an admin.")


@user_cli.command("demo")
@click.option("--email", default=None, help="Defaults to DEMO_USER_EMAIL.")
def demo_user(email: str | None) -> None:
    """Create the demo user with a fresh random password and print how to sign in."""
    address = email or current_app.config["DEMO_USER_EMAIL"]
    password = secrets.token_urlsafe(9)
    existing = db.session.scalar(select(User).where(User.email == auth.normalize_email(address)))
    if existing is None:
        auth.create_user(address, password)
    else:
        auth.change_password(existing.id, password)
    click.echo(f"Demo user: {address}  password: {password}")


@preferences_cli.command("docs")
@click.option("--check", is_flag=True, help="Fail if a committed file is out of date.")
@click.option(
    "--output", type=click.Path(path_type=Path), default=PREFERENCES_DOC, show_default=True
)
@click.option(
    "--openapi-output",
    type=click.Path(path_type=Path),
    default=OPENAPI_DOC,
    show_default=True,
    help="Where the OpenAPI document goes.",
)
def preferences_docs(check: bool, output: Path, openapi_output: Path) -> None:
    """Write the key reference and the OpenAPI document, both generated from the code."""
    generated = {output: schema.markdown_reference(), openapi_output: openapi.serialised()}
    if check:
        stale = [str(path) for path, text in generated.items() if _differs(path, text)]
        if stale:
            raise click.ClickException(
                f"{', '.join(stale)} out of date: run `make docs` (`flask preferences docs`)."
            )
        click.echo(f"{', '.join(map(str, generated))} up to date.")
        return
    for path, text in generated.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        click.echo(f"Wrote {path}.")


def _differs(path: Path, text: str) -> bool:
    return not path.exists() or path.read_text() != text


@preferences_cli.command("prune-history")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=None,
    help="Keep this many days of history; defaults to HISTORY_RETENTION_DAYS.",
)
def prune_history(days: int | None) -> None:
    """Delete change history older than the retention period and say how many entries went."""
    keep = days if days is not None else int(current_app.config["HISTORY_RETENTION_DAYS"])
    deleted = history.prune(keep)
    click.echo(f"Deleted {deleted} history entries older than {keep} days.")


def init_app(app: Flask) -> None:
    """Add the command groups to ``app``."""
    app.cli.add_command(user_cli)
    app.cli.add_command(preferences_cli)
