"""What the API promises, in one place: the views enforce it, the OpenAPI document says it."""

from __future__ import annotations

#: Clients may keep a copy but must revalidate it (cheaply, with ``If-None-Match``) each time.
SETTINGS_CACHE_CONTROL = "private, no-cache"
#: Answers that hold a user's data and are never worth keeping.
PRIVATE_NO_STORE = "private, no-store"
#: Members of the settings document that the server owns; writes may echo them back.
READ_ONLY = "updated_at"
#: The longest history page a client may ask for.
HISTORY_MAX_LIMIT = 100
#: The header a first-party client names itself in, for the history ("Changed by").
CLIENT_HEADER = "X-Settings-Client"
