"""Hub-wide records: the audit trail and cross-process locks."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    class Kind(models.TextChoices):
        SIGN_IN = "sign_in", "sign-in"
        REFUSAL = "refusal", "refusal"
        TOKEN_ISSUED = "token_issued", "token issued"
        TOKEN_REVOKED = "token_revoked", "token revoked"
        CONFIG_APPLY = "config_apply", "config apply"
        SYNC = "sync", "sync"
        ADMIN_CHANGE = "admin_change", "admin change"

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    reason = models.CharField(max_length=64, blank=True, help_text="machine-readable reason, for refusals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    email = models.CharField(max_length=254, blank=True, help_text="as presented, when no person matched")
    client_id = models.CharField(max_length=100, blank=True)
    nas_id = models.CharField(max_length=64, blank=True)
    upstream_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-time"]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.kind} {self.reason}".strip()


class Lock(models.Model):
    """A named cross-process lock with a time-to-live (identityhub.locks.DatabaseLock, when there is no
    Redis). One row per held lock, e.g. ``sync:ds923``; taken by compare-and-set, never inside a
    transaction that spans the guarded work."""

    name = models.CharField(max_length=150, primary_key=True)
    holder = models.CharField(max_length=64, help_text="the holder's random token")
    expires = models.DateTimeField()

    def __str__(self) -> str:
        return f"lock {self.name} until {self.expires:%H:%M:%S}"
