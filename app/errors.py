"""Error responses: HTML pages for people, problem documents under ``/api``."""

from __future__ import annotations

import functools
import logging
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    g,
    got_request_exception,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, SecurityError

from app import access, ratelimits
from app.extensions import login_manager
from app.http.htmx import is_htmx_request
from app.http.problems import is_api_request, problem
from app.text import gettext, lazy_gettext

log = logging.getLogger(__name__)


#: A default message per status, translated when an error is answered.
MESSAGES: dict[int, Any] = {
    400: lazy_gettext("The request could not be understood."),
    401: lazy_gettext("Please sign in to continue."),
    403: lazy_gettext("You are not allowed to do that."),
    404: lazy_gettext("There is nothing at this address."),
    405: lazy_gettext("This address does not accept that method."),
    413: lazy_gettext("The request is too large."),
    415: lazy_gettext("The request body must be JSON."),
    429: lazy_gettext("Too many attempts. Please wait a minute and try again."),
    500: lazy_gettext("Something went wrong on our side. Please try again."),
    503: lazy_gettext("The service is briefly unavailable. Please try again in a moment."),
}


def error_response(status: int, detail: str | None = None) -> Response:
    """An error in the shape the client expects: problem JSON under /api, a page elsewhere."""
    message = detail or (
        str(MESSAGES[status]) if status in MESSAGES else gettext("Something went wrong.")
    )
    if is_api_request():
        return problem(status, message)
    template = "errors/fragment.html" if is_htmx_request() else "errors/error.html"
    response = make_response(render_template(template, status=status, message=message), status)
    if is_htmx_request():
        # Errors are announced in the live region rather than swapped over the form.
        response.headers["HX-Retarget"] = "#live-region"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


def init_app(app: Flask) -> None:
    """Register the handlers on ``app``."""
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(SecurityError, untrusted_host)
    app.register_error_handler(HTTPException, http_error)
    # Error-reporting tools hear of the two kinds that are the server's fault.
    app.register_error_handler(OperationalError, functools.partial(database_error, app))
    app.register_error_handler(InterfaceError, functools.partial(database_error, app))
    app.register_error_handler(Exception, functools.partial(unexpected_error, app))
    login_manager.unauthorized_handler(unauthorized)


def csrf_error(error: CSRFError) -> ResponseReturnValue:
    """403 for a missing or wrong CSRF token; signed out, a way back to sign in."""
    # CSRFProtect runs before the sign-in check, and an anonymous client has no token
    # either way; on a page that was open, signing out in another tab took the token with
    # the session. Telling them to sign in is the answer they can act on.
    if not current_user.is_authenticated and not access.is_public():
        return unauthorized()
    detail = gettext("The security token is missing or invalid. Reload the page and try again.")
    return error_response(403, detail)


def untrusted_host(error: SecurityError) -> ResponseReturnValue:
    """400 in plain text for a Host header outside ``TRUSTED_HOSTS``."""
    # No URLs can be built for a host we refuse, so no page either.
    return Response("Bad request: unknown host.\n", 400, mimetype="text/plain")


def http_error(error: HTTPException) -> ResponseReturnValue:
    """Any HTTP error as a page, or as a problem under /api (405 keeps its Allow)."""
    status = error.code or 500
    # Werkzeug's descriptions are English: the message of the status is said in the user's.
    response = error_response(status)
    if status == 429:
        wait = ratelimits.retry_after()
        if wait is not None:
            response.headers["Retry-After"] = str(wait)
    if status == 405 and error.response is None:
        allowed = getattr(error, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


def database_error(app: Flask, error: DBAPIError) -> ResponseReturnValue:
    """503 with Retry-After while the database is unreachable.

    Only errors of reaching the database: one about the data sent (a NUL byte, a number out
    of range) is a bug to fix where input is validated, not an outage to page about.
    """
    log.error("Database unavailable: %s", error.orig)
    report(app, error)
    # Flask-Login keeps the user of a request in ``g``; one that could not be loaded is
    # anonymous for the error page, which would otherwise load it again, and a hanging
    # database cost the request its timeout twice.
    if "_login_user" not in g:
        g._login_user = login_manager.anonymous_user()
    response = error_response(503)
    response.headers["Retry-After"] = "5"
    return response


def unexpected_error(app: Flask, error: Exception) -> ResponseReturnValue:
    """Log anything unexpected and answer 500 without details."""
    log.exception("Unhandled error on %s %s", request.method, request.path)
    report(app, error)
    return error_response(500)


def unauthorized() -> ResponseReturnValue:
    """401 problem on the API, a redirect to sign in for pages.

    A page that was open while its session ended (signed out in another tab or on another
    device) gets a banner saying so, with a way back to where it was.
    """
    if is_api_request():
        return problem(401, gettext("Sign in to use the API: no valid session was sent."))
    if is_htmx_request():
        page = urlsplit(request.headers.get("HX-Current-URL", ""))
        here = page.path + (f"?{page.query}" if page.query else "") or request.path
        response = make_response(render_template("_signed_out.html", next=here), 401)
        response.headers["HX-Retarget"] = "#session-banner"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    return redirect(_login_url())


def report(app: Flask, error: Exception) -> None:
    """Tell error-reporting tools (Sentry's Flask integration and the like) about ``error``.

    Flask sends ``got_request_exception`` only for exceptions no handler takes; ours take
    them all, so they send it themselves.
    """
    got_request_exception.send(app, exception=error)


def _login_url() -> str:
    """The sign-in page, coming back here afterwards."""
    return url_for("auth.login", next=request.full_path.rstrip("?"))
