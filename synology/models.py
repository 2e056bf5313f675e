"""NASes, their synced local accounts, explicit account mappings and sync runs."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import normalize_email
from identityhub.crypto import EncryptedTextField


class NAS(models.Model):
    class Status(models.TextChoices):
        NEVER = "never", _("never synced")
        OK = "ok", "ok"
        UNREACHABLE = "unreachable", "unreachable"
        AUTH_FAILED = "auth_failed", "authentication failed"
        ERROR = "error", "error"

    id = models.SlugField(primary_key=True, max_length=64)
    name = models.CharField(_("name"), max_length=150, blank=True)
    household = models.ForeignKey("accounts.Household", on_delete=models.PROTECT, related_name="nases",
                                  verbose_name=_("household"))
    base_url = models.URLField(_("URL"), help_text="https://192.168.1.20:5001")
    verify_tls = models.BooleanField(_("verify TLS"), default=True)
    ca_file = models.CharField(_("CA file"), max_length=500, blank=True, help_text=_("CA bundle path; implies verify"))
    service_username = models.CharField(_("service user name"), max_length=150, blank=True)
    service_password = EncryptedTextField(_("service password"), blank=True)
    sync_interval = models.DurationField(_("sync interval"), default=timedelta(hours=1))
    enabled = models.BooleanField(_("enabled"), default=True)
    managed = models.BooleanField(_("managed by the config"), default=False)
    new_account_groups = models.JSONField(
        _("groups for new accounts"), default=list, blank=True,
        help_text=_("DSM groups an account the hub creates on this NAS joins (every account is in \"users\" "
                    "already)"),
    )

    next_sync_at = models.DateTimeField(_("next sync"), null=True, blank=True, db_index=True)
    last_status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.NEVER)
    last_message = models.TextField(_("last message"), blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True,
                                         help_text=_("first failure of the current streak"))
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0)

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
        EMAIL = "email", _("verified email")
        EXPLICIT = "explicit", _("explicit mapping")
        ADMIN = "admin", _("admin")

    nas = models.ForeignKey(NAS, on_delete=models.CASCADE, related_name="accounts", verbose_name="NAS")
    name = models.CharField(_("account"), max_length=150, help_text=_("exactly as DSM lists it"))
    uid = models.IntegerField(_("uid"), null=True, blank=True)
    email = models.CharField(_("email in DSM"), max_length=254, blank=True)
    description = models.CharField(_("description"), max_length=500, blank=True)
    expired = models.BooleanField(_("expired"), default=False)
    present = models.BooleanField(_("present"), default=True, help_text=_("seen in the last successful listing"))
    first_seen = models.DateTimeField(_("first seen"), null=True, blank=True)
    last_seen = models.DateTimeField(_("last seen"), null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="dsm_accounts"
    )
    linked_by = models.CharField(_("linked by"), max_length=16, choices=LinkedBy.choices, blank=True)
    link_note = models.CharField(_("link note"), max_length=300, blank=True,
                                 help_text=_("why an account is not linked"))

    class Meta:
        verbose_name = "DSM account"
        ordering = ["nas_id", "name"]
        constraints = [models.UniqueConstraint(fields=["nas", "name"], name="unique_dsm_account")]
        indexes = [models.Index(fields=["nas", "user"])]

    def __str__(self) -> str:
        return f"{self.nas_id}:{self.name}"


class AccountMapping(models.Model):
    """An explicit link (nas, email) -> DSM account name; wins over email matching."""

    nas = models.ForeignKey(NAS, on_delete=models.CASCADE, related_name="mappings", verbose_name="NAS")
    email = models.EmailField(_("email"), )
    account_name = models.CharField(_("account name"), max_length=150)
    managed = models.BooleanField(_("managed by the config"), default=False)

    class Meta:
        verbose_name = _("account mapping")
        verbose_name_plural = _("account mappings")
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

