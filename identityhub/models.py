"""Hub-wide records: the audit trail."""

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
