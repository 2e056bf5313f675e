"""People: users (email-first), households, memberships, upstream identity providers."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models

from identityhub.crypto import EncryptedTextField

GOOGLE_ISSUER = "https://accounts.google.com"  # type `google` has this fixed issuer
ASCII_UPPER_TO_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively for ASCII letters only, everywhere; normalised in Python.

    `str.lower()` folds more than ASCII: a KELVIN SIGN (U+212A) becomes "k", so an upstream's verified
    `\u212aate@example.com` matched kate@example.com. Other letters are compared exactly as written.
    """
    return (email or "").strip().translate(ASCII_UPPER_TO_LOWER)


def issuer_of(type: str, issuer: str) -> str:
    """The issuer an upstream of this type and `issuer` field signs in with: its sign-in links are bound
    to it. `google` has Google's fixed issuer unless one is given; `mock` (development) has none."""
    if type == "mock":
        return ""
    return (issuer or GOOGLE_ISSUER).rstrip("/")


def normalize_domain(domain: str) -> str:
    """An email domain as `normalize_email` leaves it (ASCII letters folded, nothing else)."""
    return (domain or "").strip().translate(ASCII_UPPER_TO_LOWER)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, email):
        return self.get(email=normalize_email(email))

    def create_user(self, email: str, name: str = "", **extra):
        user = self.model(email=normalize_email(email), name=name, **extra)
        user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, name: str = "", **extra):
        """Bootstrap only (`createsuperuser`); day-to-day the admin is entered through an upstream."""
        user = self.model(email=normalize_email(email), name=name, is_staff=True, is_superuser=True, **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True, help_text="stored with ASCII letters lower-cased; unique")
    name = models.CharField(max_length=150, blank=True)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="the OIDC `sub`")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="may enter the admin site")
    managed = models.BooleanField(default=False, help_text="declared by the config file")
    date_joined = models.DateTimeField(auto_now_add=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = ["name"]

    class Meta:
        ordering = ["email"]
        verbose_name = "person"
        verbose_name_plural = "people"

    def save(self, *args, **kwargs):
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name.split(" ")[0] if self.name else self.email


class Household(models.Model):
    id = models.SlugField(primary_key=True, max_length=64)
    name = models.CharField(max_length=150)
    managed = models.BooleanField(default=False)
    members = models.ManyToManyField(User, through="Membership", related_name="households")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or self.id


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "member"
        ADMIN = "admin", "admin"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    # "invitation" or "request" when the person joined through the hub (not by config or the console):
    # the config's reconciliation of a household's members leaves such memberships alone.
    joined_by = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "household"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.household_id} ({self.role})"


class Upstream(models.Model):
    """An identity provider people sign in with. The social-auth provider name is its id."""

    class Type(models.TextChoices):
        GOOGLE = "google", "Google"
        OIDC = "oidc", "OpenID Connect"
        MOCK = "mock", "Mock (development only)"

    id = models.SlugField(primary_key=True, max_length=64)
    type = models.CharField(max_length=16, choices=Type.choices)
    name = models.CharField(max_length=150, blank=True, help_text="button label")
    issuer = models.URLField(blank=True, help_text="for type oidc; discovered from <issuer>/.well-known")
    client_id = models.CharField(max_length=255, blank=True)
    client_secret = EncryptedTextField(blank=True)
    allowed_domains = models.JSONField(default=list, blank=True, help_text="first links only from these")
    enabled = models.BooleanField(default=True)
    managed = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.label

    @property
    def effective_issuer(self) -> str:
        """The issuer its sign-in links are bound to (`UserSocialAuth.extra_data["iss"]`)."""
        return issuer_of(self.type, self.issuer)

    @property
    def label(self) -> str:
        return self.name or {"google": "Google"}.get(self.type, self.id)


class Passkey(models.Model):
    """A person's WebAuthn credential (passkey): discoverable, used with user verification. Nothing
    here is secret — the public key only verifies what the person's authenticator signs
    (accounts/passkeys.py)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="passkeys")
    credential_id = models.CharField(max_length=1400, unique=True, help_text="base64url, as browsers send it")
    public_key = models.BinaryField(help_text="COSE public key")
    sign_count = models.PositiveBigIntegerField(default=0, help_text="the authenticator's signature counter")
    name = models.CharField(max_length=64)
    transports = models.JSONField(default=list, blank=True)
    aaguid = models.CharField(max_length=36, blank=True, help_text="the authenticator's model")
    backup_eligible = models.BooleanField(default=False, help_text="may be synced to other devices")
    backup_state = models.BooleanField(default=False, help_text="synced (backed up) at its last use")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.name
