"""The provider's own records beside DOT's: client profiles, signing keys, consent, redeemed codes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from oauth2_provider.models import Application

from identityhub.crypto import EncryptedTextField


class ClientProfile(models.Model):
    """What the hub knows about a client beyond DOT's Application.

    Consent skipping is DOT's own `Application.skip_authorization`; it is not duplicated here.
    """

    application = models.OneToOneField(Application, on_delete=models.CASCADE, related_name="profile")
    nas = models.ForeignKey(
        "synology.NAS", null=True, blank=True, on_delete=models.PROTECT, related_name="clients",
        help_text="the username claim is the person's account on this NAS",
    )
    households = models.ManyToManyField(
        "accounts.Household", blank=True, related_name="clients",
        help_text="who may use the client; empty means the bound NAS's household",
    )
    extra_claims = models.JSONField(default=dict, blank=True, help_text="claim name -> rule (config vocabulary)")
    backchannel_logout_uri = models.URLField(
        max_length=500, blank=True,
        help_text="OpenID Connect Back-Channel Logout: where the hub POSTs a logout token when a person signs out",
    )
    managed = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.application.client_id


class SigningKey(models.Model):
    """RSA keys for ID tokens. Exactly one is active; retiring ones stay in the JWKS."""

    kid = models.CharField(max_length=64, unique=True, help_text="RFC 7638 thumbprint")
    private_pem = EncryptedTextField()
    active = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            # Makes "generate on first start" race-free: a second concurrent insert fails.
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="one_active_signing_key"),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({'active' if self.active else 'retiring'})"


class Consent(models.Model):
    """A person's recorded approval of a client for a set of scopes."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consents")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="consents")
    scopes = models.TextField(help_text="space-separated")
    granted = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "application"], name="unique_consent")]

    def __str__(self) -> str:
        return f"{self.user} → {self.application}: {self.scopes}"

    def covers(self, scopes: list[str]) -> bool:
        return set(scopes) <= set(self.scopes.split())


class RedeemedCode(models.Model):
    """An authorization code already exchanged, and what it produced (RFC 6749 §4.1.2).

    DOT deletes the Grant on redemption, so a replayed code would only get `invalid_grant`
    while the first tokens stay valid. Remembering the code lets the hub revoke them. The row
    also keeps the sign-in time for the refresh-token family, so a refreshed ID token carries the
    original `auth_time` (OIDC Core §12.2), not the person's latest sign-in elsewhere. Rows live as
    long as a refresh token can (settings.HUB_REDEEMED_CODE_RETENTION_SECONDS).
    """

    code_digest = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(Application, on_delete=models.CASCADE)
    access_token_checksum = models.CharField(max_length=64)
    token_family = models.UUIDField(null=True, blank=True, db_index=True)
    auth_time = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="the sign-in time behind the code; refreshed ID tokens repeat it"
    )
    sid = models.CharField(
        max_length=64, blank=True, default="",
        help_text="the hub session behind the code; refreshed ID tokens repeat it",
    )
    redeemed = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"code {self.code_digest[:12]}… redeemed {self.redeemed:%Y-%m-%d %H:%M}"


class ClientSession(models.Model):
    """A client that got tokens in one of a person's hub sessions (`sid`, the ID token's claim).

    Written at each code exchange (one upsert); read when the person signs out, signs out
    everywhere, is deactivated or leaves a household: each such client is sent a logout token
    (OpenID Connect Back-Channel Logout 1.0, identityhub.oidc.backchannel) and its tokens are revoked.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="client_sessions")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    sid = models.CharField(max_length=64, help_text="the hub session (not Django's session key)")
    created = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["application", "sid"], name="unique_client_session")]
        indexes = [models.Index(fields=["user", "sid"], name="client_session_user_sid")]

    def __str__(self) -> str:
        return f"{self.user_id} · {self.application_id} · {self.sid[:8]}…"


class CacheGeneration(models.Model):
    """A random token replaced whenever a cached family of rows changes (here: "clients").

    Every process keeps its parsed clients in memory and checks this one row per request: a
    different token means something changed, so the cache is dropped. The token is written in
    the same transaction as the change, so a rolled-back change leaves caches valid.
    """

    name = models.CharField(max_length=32, primary_key=True)
    token = models.UUIDField(default=uuid.uuid4)

    def __str__(self) -> str:
        return f"{self.name}: {self.token}"
