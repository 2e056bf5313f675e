"""NASes, their synced local accounts, explicit account mappings and sync runs."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models

from accounts.models import normalize_email
from identityhub.crypto import EncryptedTextField


class NAS(models.Model):
    class Status(models.TextChoices):
        NEVER = "never", "never synced"
        OK = "ok", "ok"
        UNREACHABLE = "unreachable", "unreachable"
        AUTH_FAILED = "auth_failed", "authentication failed"
        ERROR = "error", "error"

    id = models.SlugField(primary_key=True, max_length=64)
    name = models.CharField(max_length=150, blank=True)
    household = models.ForeignKey("accounts.Household", on_delete=models.PROTECT, related_name="nases")
    base_url = models.URLField(help_text="https://192.168.1.20:5001")
    verify_tls = models.BooleanField(default=True)
    ca_file = models.CharField(max_length=500, blank=True, help_text="CA bundle path; implies verify")
    service_username = models.CharField(max_length=150, blank=True)
    service_password = EncryptedTextField(blank=True)
    sync_interval = models.DurationField(default=timedelta(hours=1))
    enabled = models.BooleanField(default=True)
    managed = models.BooleanField(default=False)

    next_sync_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEVER)
    last_message = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True, help_text="first failure of the current streak")
    consecutive_failures = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "NAS"
        verbose_name_plural = "NASes"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or self.id

    @property
    def tls_verify(self) -> bool | str:
        """The `verify` argument for requests: True, False or a CA bundle path."""
        if self.ca_file:
            return self.ca_file
        return self.verify_tls


class DSMAccount(models.Model):
    class LinkedBy(models.TextChoices):
        EMAIL = "email", "verified email"
        EXPLICIT = "explicit", "explicit mapping"
        ADMIN = "admin", "admin"

    nas = models.ForeignKey(NAS, on_delete=models.CASCADE, related_name="accounts")
    name = models.CharField(max_length=150, help_text="exactly as DSM lists it")
    uid = models.IntegerField(null=True, blank=True)
    email = models.CharField(max_length=254, blank=True)
    description = models.CharField(max_length=500, blank=True)
    expired = models.BooleanField(default=False)
    present = models.BooleanField(default=True, help_text="seen in the last successful listing")
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="dsm_accounts"
    )
    linked_by = models.CharField(max_length=16, choices=LinkedBy.choices, blank=True)
    link_note = models.CharField(max_length=300, blank=True, help_text="why an account is not linked")

    class Meta:
        verbose_name = "DSM account"
        ordering = ["nas_id", "name"]
        constraints = [models.UniqueConstraint(fields=["nas", "name"], name="unique_dsm_account")]
        indexes = [models.Index(fields=["nas", "user"])]

    def __str__(self) -> str:
        return f"{self.nas_id}:{self.name}"


class AccountMapping(models.Model):
    """An explicit link (nas, email) -> DSM account name; wins over email matching."""

    nas = models.ForeignKey(NAS, on_delete=models.CASCADE, related_name="mappings")
    email = models.EmailField()
    account_name = models.CharField(max_length=150)
    managed = models.BooleanField(default=False)

    class Meta:
        ordering = ["nas_id", "email"]
        constraints = [models.UniqueConstraint(fields=["nas", "email"], name="unique_account_mapping")]

    def __str__(self) -> str:
        return f"{self.nas_id}: {self.email} -> {self.account_name}"

    def save(self, *args, **kwargs):
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)


class SyncRun(models.Model):
    class Outcome(models.TextChoices):
        RUNNING = "running", "running"
        OK = "ok", "ok"
        UNREACHABLE = "unreachable", "unreachable"
        AUTH_FAILED = "auth_failed", "authentication failed"
        ERROR = "error", "error"

    nas = models.ForeignKey(NAS, on_delete=models.CASCADE, related_name="sync_runs")
    started = models.DateTimeField(db_index=True)
    finished = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    trigger = models.CharField(max_length=16, default="schedule", help_text="schedule | manual | sign-in")
    new = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    absent = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started"]

    def __str__(self) -> str:
        return f"{self.nas_id} {self.started:%Y-%m-%d %H:%M} {self.outcome}"

