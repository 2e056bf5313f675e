"""The provider's housekeeping job (registered with identityhub.housekeeping in OidcConfig.ready)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone
from oauth2_provider.models import RefreshToken, clear_expired

from .models import ClientSession
from .validator import clear_redeemed_codes


def housekeeping() -> dict[str, int]:
    """DOT's expired tokens and grants; redeemed codes and client sessions (back-channel logout)
    older than HUB_REDEEMED_CODE_RETENTION_SECONDS: no token of theirs can still be alive."""
    clear_expired()
    retention = timedelta(seconds=settings.HUB_REDEEMED_CODE_RETENTION_SECONDS)
    codes = clear_redeemed_codes(retention)
    # A session refreshed for longer keeps its row while its client holds a live refresh token.
    alive = RefreshToken.objects.filter(user=OuterRef("user"), application=OuterRef("application"),
                                        revoked__isnull=True)
    sessions, _ = ClientSession.objects.filter(last_seen__lt=timezone.now() - retention).exclude(
        Exists(alive)).delete()
    return {"redeemed_codes": codes, "client_sessions": sessions}
