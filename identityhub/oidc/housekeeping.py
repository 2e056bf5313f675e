"""The provider's housekeeping job (registered with identityhub.housekeeping in OidcConfig.ready)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from oauth2_provider.models import clear_expired

from .validator import clear_redeemed_codes


def housekeeping() -> dict[str, int]:
    """DOT's expired tokens and grants; redeemed codes older than HUB_REDEEMED_CODE_RETENTION_SECONDS."""
    clear_expired()
    codes = clear_redeemed_codes(timedelta(seconds=settings.HUB_REDEEMED_CODE_RETENTION_SECONDS))
    return {"redeemed_codes": codes}
