"""Signing keys: generated once (race-free), stored encrypted, loaded identically by every process.

DOT reads `OIDC_RSA_PRIVATE_KEY` from settings; settings.py points it at `active_private_pem()`.
Each process keeps the key ring in memory and, at most once a second, checks the "keys"
generation token (`selectors.current_generation`), which `rotate()` changes in the same
transaction as the keys: a rotation reaches every process within a second. A key that cannot be
decrypted raises: it is never replaced silently.

Rotation (`hub keys rotate`): the new key signs at once; the previous one stays in the JWKS (and
keeps verifying `id_token_hint`s) for HUB_KEY_RETIREMENT_SECONDS, then is no longer published.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from jwcrypto import jwk
from jwcrypto.common import base64url_encode, json_encode

from .models import SigningKey
from .selectors import bump_generation, current_generation

log = logging.getLogger(__name__)
KEYS = "keys"
RECHECK_SECONDS = 1.0

_lock = threading.Lock()
_loaded: KeyRing | None = None
_generation: object = None
_checked_at = 0.0


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

    @cached_property
    def _signing_key(self):  # the cryptography key object inside the active JWK, loaded once
        return self.active.get_op_key("sign")

    @cached_property
    def _jwt_header(self) -> str:
        return base64url_encode(json_encode({"typ": "JWT", "alg": "RS256", "kid": self.kid}))

    def sign_jwt(self, claims: dict) -> str:
        """A compact RS256 JWT of `claims`, header {typ: JWT, alg: RS256, kid}, signed with the active
        key: byte for byte what `jwt.JWT(header=…, claims=claims).make_signed_token(active)` and
        `serialize()` give (jwcrypto's json_encode: sorted keys, no spaces; PKCS#1 v1.5 signatures are
        deterministic), without jwcrypto's per-token deep copies of its claim registry, the claims and
        the header, its re-parse of the header and its key-operation checks."""
        signing_input = f"{self._jwt_header}.{base64url_encode(json_encode(claims))}"
        signature = self._signing_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{base64url_encode(signature)}"


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


def retiring_keys():
    """Retired keys still published: retired less than HUB_KEY_RETIREMENT_SECONDS ago."""
    cutoff = timezone.now() - timedelta(seconds=settings.HUB_KEY_RETIREMENT_SECONDS)
    return SigningKey.objects.filter(active=False, retired_at__gt=cutoff).order_by("-retired_at")


def load_keyring() -> KeyRing:
    active = ensure_active_key()
    published = jwk.JWKSet()
    active_jwk = _jwk_from_pem(active.private_pem)
    published.add(active_jwk)
    for retiring in retiring_keys():
        published.add(_jwk_from_pem(retiring.private_pem))
    return KeyRing(active=active_jwk, active_pem=active.private_pem, published=published)


def keyring() -> KeyRing:
    """The process-wide key ring: loaded on first use, revalidated at most once a second."""
    global _loaded, _generation, _checked_at
    now = time.monotonic()
    if _loaded is not None and now - _checked_at < RECHECK_SECONDS:
        return _loaded
    with _lock:
        if _loaded is None or now - _checked_at >= RECHECK_SECONDS:
            generation = current_generation(KEYS)  # read before the keys: never older than the token
            if _loaded is None or generation != _generation:
                _loaded = load_keyring()
                _generation = generation
            _checked_at = now
    return _loaded


def reload_keyring() -> KeyRing:
    global _loaded
    with _lock:
        _loaded = None
    return keyring()


@transaction.atomic
def rotate() -> SigningKey:
    """Make a new active key; the current one retires (still published for the grace period)."""
    pem = generate_private_pem()
    current = SigningKey.objects.select_for_update().filter(active=True).first()
    if current is not None:
        current.active = False
        current.retired_at = timezone.now()
        current.save(update_fields=["active", "retired_at"])
    key = SigningKey.objects.create(kid=_jwk_from_pem(pem).get("kid"), private_pem=pem, active=True)
    bump_generation(KEYS)
    global _checked_at
    _checked_at = 0.0  # this process rechecks on its next use
    log.warning("signing key rotated: %s is active, %s retiring", key.kid, current.kid if current else "-")
    return key


def active_private_pem() -> str:
    return keyring().active_pem
