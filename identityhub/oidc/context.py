"""The Django request being served by the authorization endpoint, for the validator's silent checks.

oauthlib calls `validate_silent_login` / `validate_silent_authorization` without the session user;
the authorization view sets this for the duration of the request.
"""

from contextvars import ContextVar

from django.http import HttpRequest

current_http_request: ContextVar[HttpRequest | None] = ContextVar("current_http_request", default=None)
