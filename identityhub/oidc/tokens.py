"""Token values: 256 bits from `secrets` (oauthlib's default draws 30 characters one by one)."""

import secrets


def random_token(request=None, refresh_token: bool = False) -> str:
    return secrets.token_urlsafe(32)
