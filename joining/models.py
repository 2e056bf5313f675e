"""Joining a household through the hub: invitations and access requests."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Invitation(models.Model):
    """A single-use link that lets one person join a household, with any upstream or a passkey.

    Only a digest of the link's token is stored: the link is shown once, when it is made.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("waiting")
        USED = "used", _("used")
        EXPIRED = "expired", _("expired")
        REVOKED = "revoked", _("revoked")

    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    household = models.ForeignKey("accounts.Household", on_delete=models.CASCADE, related_name="invitations",
                                  verbose_name=_("household"))
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations",
                               verbose_name=_("person"))
    role = models.CharField(_("role"), max_length=16, default="member")
    nas = models.ForeignKey("synology.NAS", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="invitations", verbose_name=_("NAS"))
    account_name = models.CharField(_("NAS account"), max_length=150, blank=True,
                                    help_text=_("linked to the person when the invitation was made"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("invited by"))
    created_at = models.DateTimeField(_("made"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)
    used_with = models.CharField(_("signed in with"), max_length=64, blank=True,
                                 help_text=_("the upstream id, or passkey"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")

    def __str__(self) -> str:
        return f"{self.person.email} → {self.household_id}"

    @property
    def state(self) -> str:
        if self.used_at:
            return self.State.USED
        if self.revoked_at:
            return self.State.REVOKED
        if self.expires_at <= timezone.now():
            return self.State.EXPIRED
        return self.State.PENDING

    def get_state_display(self) -> str:
        return str(self.State(self.state).label)


class AccessRequest(models.Model):
    """Someone the hub refused asks a household's admins to let them in. Nothing is created for
    them (no person, no link, no membership, no NAS account) until an admin approves."""

    class State(models.TextChoices):
        OPEN = "open", _("waiting for an answer")
        APPROVED = "approved", _("approved")
        DECLINED = "declined", _("declined")

    household = models.ForeignKey("accounts.Household", on_delete=models.CASCADE, related_name="access_requests",
                                  verbose_name=_("household"))
    client_id = models.CharField(_("app"), max_length=100, blank=True, help_text=_("the app they tried to open"))
    nas = models.ForeignKey("synology.NAS", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="access_requests", verbose_name=_("NAS"))
    email = models.EmailField(_("email"))
    name = models.CharField(_("name"), max_length=150, blank=True)
    # Who asked: a signed-in person the policy refused, or an upstream identity no person has yet.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="access_requests", verbose_name=_("person"))
    upstream_id = models.CharField(_("signed in with"), max_length=64, blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True,
                               help_text=_("the upstream's identifier for them"))
    id_key = models.CharField(max_length=64, blank=True, editable=False, help_text="social-auth id_key of the subject")
    issuer = models.CharField(max_length=500, blank=True, editable=False)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.OPEN, db_index=True)
    created_at = models.DateTimeField(_("asked"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("decided by"))
    outcome = models.TextField(_("outcome"), blank=True, help_text=_("what the decision did, or why it failed"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("access request")
        verbose_name_plural = _("access requests")
        constraints = [
            models.UniqueConstraint(fields=["email", "client_id"], condition=Q(state="open"),
                                    name="one_open_request_per_person_and_app"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.client_id or self.household_id}"
