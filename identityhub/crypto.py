"""Secrets at rest: Fernet with key rotation (HUB_ENCRYPTION_KEY, first key encrypts)."""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in settings.HUB_ENCRYPTION_KEYS])
    except ValueError as error:
        raise ImproperlyConfigured(f"HUB_ENCRYPTION_KEY holds an invalid Fernet key: {error}") from None


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "a stored secret cannot be decrypted: was HUB_ENCRYPTION_KEY (or HUB_SECRET_KEY in debug) changed?"
        ) from None


class EncryptedTextField(models.TextField):
    """A text column stored Fernet-encrypted; Python code sees plaintext. Empty stays empty."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)
