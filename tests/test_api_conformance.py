"""Conformance: schemathesis drives the API from its own OpenAPI document, signed in, in process.

Every generated request must get no 5xx and a response the document allows (schemathesis'
standard checks), and any request refused with an error must leave stored data as it was.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from sqlalchemy import select

from app.api import openapi
from app.extensions import db
from app.models import User
from tests.conftest import csrf_token

#: The issue asks for at least this many generated requests in one run.
MIN_REQUESTS = 500

#: Requests sent by the generated tests, by generation mode; checked once all have run.
SENT = {"positive": 0, "negative": 0}
#: Responses by operation and status, printed at the end to show what was exercised.
STATUSES: Counter[str] = Counter()

#: What generated requests carry as credentials. Schemathesis builds some cases while pytest
#: collects, before any test has signed in, so the real values are swapped in on the way
#: into the app (``SignedInMiddleware``).
SESSION_PLACEHOLDER = "signed-in-session"
CSRF_PLACEHOLDER = "signed-in-csrf-token"


@pytest.fixture
def backend() -> str:
    """One backend is enough here; test_api.py covers both."""
    return "postgresql"


def build_schema() -> Any:
    """The OpenAPI document, loaded for schemathesis and set up for this suite.

    Built at import because ``parametrize`` needs it to collect the tests. Outside a request
    the document is in English, as the app serves it to an English-speaking user (checked
    by ``test_served_document_is_the_one_tested``).
    """
    loaded = schemathesis.openapi.from_dict(openapi.document())
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        # The credentials come from ``SignedIn``; generated ones would only be refused with
        # 401/403 and test nothing else.
        with_security_parameters=False,
        # Reproducible in CI, and no example database written into the tree.
        deterministic=True,
        database="none",
    )
    acceptance = loaded.config.checks.positive_data_acceptance
    # A generated If-Match is schema-valid yet names a version that does not exist, so 412
    # is the right answer to it. (Assigned, not appended: the default list is shared.)
    acceptance.expected_statuses = [*acceptance.expected_statuses, "412"]
    return loaded


schema = build_schema()


@schema.auth(refresh_interval=None)
class SignedIn:
    """Credentials as schemathesis sees them: explicit, so its ``ignored_auth`` check takes
    them away (or spoils them) and expects 401 or 403."""

    def get(self, case: Any, context: Any) -> tuple[str, str]:
        """The placeholders, which stand for the running test's session."""
        return SESSION_PLACEHOLDER, CSRF_PLACEHOLDER

    def set(self, case: Any, data: tuple[str, str], context: Any) -> None:
        """Put the session cookie and the CSRF header on the request."""
        session, token = data
        case.cookies = {**(case.cookies or {}), "session": session}
        case.headers = {**(case.headers or {}), "X-CSRFToken": token}


class SignedInMiddleware:
    """Replace the placeholder credentials with the signed-in session's real ones."""

    def __init__(self, wsgi_app: Any, cookie: str, token: str) -> None:
        self.wsgi_app = wsgi_app
        self.cookie = cookie
        self.token = token

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        cookies = environ.get("HTTP_COOKIE")
        if cookies:
            environ["HTTP_COOKIE"] = cookies.replace(
                f"session={SESSION_PLACEHOLDER}", f"session={self.cookie}"
            )
        if environ.get("HTTP_X_CSRFTOKEN") == CSRF_PLACEHOLDER:
            environ["HTTP_X_CSRFTOKEN"] = self.token
        return self.wsgi_app(environ, start_response)


@dataclass
class Session:
    """The signed-in user whose stored data the generated requests must respect."""

    app: Flask
    user_id: int

    def stored(self) -> tuple[Any, ...]:
        """Everything a request could change on the user's row."""
        with self.app.app_context():
            row = db.session.execute(
                select(User.preferences, User.version, User.preferences_updated_at).where(
                    User.id == self.user_id
                )
            ).one()
            db.session.rollback()
            return tuple(row)


@pytest.fixture
def session(app: Flask, signed_in: FlaskClient, user: int) -> Session:
    """Sign in through the real pages and let generated requests use that session."""
    # The token first: issuing it stores its secret in the session, so the cookie changes.
    token = csrf_token(signed_in, "/settings")
    cookie = signed_in.get_cookie("session")
    assert cookie is not None
    app.wsgi_app = SignedInMiddleware(app.wsgi_app, cookie.value, token)
    return Session(app=app, user_id=user)


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_openapi_document(case: Any, session: Session) -> None:
    # In process: the schema was loaded before any app existed, and checks that send probes
    # of their own (ignored_auth) look for the app on the operation and its schema.
    case.operation.app = case.operation.schema.app = session.app
    before = session.stored()
    response = case.call_and_validate()
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    SENT["negative" if negative else "positive"] += 1
    STATUSES[f"{case.method} {case.path} {response.status_code}"] += 1
    if response.status_code >= 400:
        # Refused, whether schemathesis meant it to be or not: nothing may have changed.
        assert session.stored() == before, (case.method, case.path, response.status_code)


def test_served_document_is_the_one_tested(signed_in: FlaskClient) -> None:
    assert signed_in.get("/api/openapi.json").get_json() == openapi.document()


def test_enough_requests_were_generated() -> None:
    """Runs after the generated tests (pytest keeps file order), so the tally is complete."""
    total = sum(SENT.values())
    print(f"schemathesis sent {total} requests: {SENT}")
    for outcome, count in sorted(STATUSES.items()):
        print(f"  {outcome}: {count}")
    assert total >= MIN_REQUESTS, SENT
    assert SENT["negative"] > 0
