"""Conditional requests on the settings: ``If-None-Match`` for reads, ``If-Match`` for writes."""

from __future__ import annotations

from flask import request
from werkzeug.http import parse_etags

from app.preferences import registry
from app.preferences.snapshot import Settings

#: Versions start at 1: what If-Match asks for when none of its tags can match.
NO_VERSION = 0


def not_modified(settings: Settings) -> bool:
    """Whether ``If-None-Match`` names the current ETag (weakly, as RFC 9110 says)."""
    header = request.headers.get("If-None-Match")
    return header is not None and parse_etags(header).contains_weak(settings.etag[1:-1])


def expected_version(current: Settings) -> int | None:
    """The version ``If-Match`` requires, or ``None`` when it is absent or ``*``.

    Our ETags read ``"<user id>.<version>.<registry fingerprint>"``; If-Match compares
    strongly, so weak tags, another user's tags and tags from another registry never match.
    The service compares the version under the row lock after validating the body, so a
    bad body is a 422 whatever If-Match says, and only a valid write can be a 412.
    """
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tags = parse_etags(header)
    if tags.star_tag:
        return None
    versions = _versions(tags.as_set(), str(current.user_id), registry.fingerprint())
    if current.version in versions:
        return current.version
    # Versions only grow, so tags older than the session's snapshot are stale; a newer one
    # means the snapshot trails a write, and the service decides.
    newer = [version for version in versions if version > current.version]
    return min(newer) if newer else NO_VERSION


def _versions(tags: set[str], user_id: str, fingerprint: str) -> set[int]:
    """The versions named by those of ``tags`` that are ours, for this user and registry."""
    versions: set[int] = set()
    for tag in tags:
        if not tag:
            # Werkzeug parses the empty tag ``""`` as None.
            continue
        tag_user, _, rest = tag.partition(".")
        version, _, tag_fingerprint = rest.partition(".")
        if (
            tag_user == user_id
            and tag_fingerprint == fingerprint
            and version.isascii()
            and version.isdigit()
            and len(version) < 19
        ):
            versions.add(int(version))
    return versions
