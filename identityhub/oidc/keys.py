"""Signing keys: generated once (race-free), stored encrypted, loaded identically by every process.

DOT reads `OIDC_RSA_PRIVATE_KEY` from settings; settings.py points it at `active_private_pem()`, so
the first use in a process loads the active key from the database and keeps it for the life of
the process. A key that cannot be decrypted raises: it is never replaced silently.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import IntegrityError, transaction
from jwcrypto import jwk

from .models import SigningKey

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: KeyRing | None = None


@dataclass(frozen=True)
class KeyRing:
    active: jwk.JWK
    active_pem: str
    published: jwk.JWKSet  # active + retiring, private parts included (for verifying hints)

    @property
    def kid(self) -> str:
        return self.active.get("kid")

    def public_jwks(self) -> dict:
        return {"keys": [key.export_public(as_dict=True) | {"use": "sig", "alg": "RS256"} for key in self.published]}


def generate_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _jwk_from_pem(pem: str) -> jwk.JWK:
    """A JWK whose `kid` is its RFC 7638 thumbprint (the same value DOT puts in token headers)."""
    key = jwk.JWK.from_pem(pem.encode())
    exported = key.export(as_dict=True)
    exported["kid"] = key.thumbprint()
    return jwk.JWK(**exported)


def ensure_active_key() -> SigningKey:
    """Return the active key, creating it if none exists. Concurrent callers all get the same one."""
    key = SigningKey.objects.filter(active=True).first()
    if key is not None:
        return key
    pem = generate_private_pem()
    kid = _jwk_from_pem(pem).get("kid")
    try:
        with transaction.atomic():
            key = SigningKey.objects.create(kid=kid, private_pem=pem, active=True)
        log.warning("generated the first signing key %s", kid)
        return key
    except IntegrityError:  # another process won the race: use theirs
        return SigningKey.objects.get(active=True)


def load_keyring() -> KeyRing:
    active = ensure_active_key()
    published = jwk.JWKSet()
    active_jwk = _jwk_from_pem(active.private_pem)
    published.add(active_jwk)
    for retiring in SigningKey.objects.filter(active=False, retired_at__isnull=False):
        published.add(_jwk_from_pem(retiring.private_pem))
    return KeyRing(active=active_jwk, active_pem=active.private_pem, published=published)


def keyring() -> KeyRing:
    """The process-wide key ring, loaded on first use."""
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = load_keyring()
    return _loaded


def reload_keyring() -> KeyRing:
    global _loaded
    with _lock:
        _loaded = None
    return keyring()


def active_private_pem() -> str:
    return keyring().active_pem
