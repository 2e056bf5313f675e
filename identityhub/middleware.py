"""Request hygiene that every view relies on."""

from __future__ import annotations

from django.http import JsonResponse


class RefuseNulBytesMiddleware:
    """A NUL byte in a query or form parameter is a 400 (`invalid_request`).

    No OAuth/OIDC parameter may hold one, and PostgreSQL refuses them in text values: a client_id,
    code or token with a NUL reached the database as a DataError, a 500 (SQLite merely found no row).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request.GET) or (request.method == "POST" and _has_nul(request.POST)):
            # The OAuth error shape, so the token endpoint's clients can read it too.
            return JsonResponse({"error": "invalid_request", "error_description": "NUL byte in a parameter"},
                                status=400)
        return self.get_response(request)


def _has_nul(params) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in params.lists())
