"""Client secrets: a fast salted SHA-256, safe only because every accepted secret is strong.

DOT's default (PBKDF2, 1M iterations) costs ~0.4 s of CPU per token request. Secrets the hub
accepts carry at least 128 bits, so a single salted hash is as hard to reverse as the secret is
to guess. `check_secret_strength` is the gate, applied wherever a secret can be set.
"""

from __future__ import annotations

import hashlib
import math
import secrets

from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare, get_random_string

MIN_SECRET_LENGTH = 32
MIN_SECRET_BITS = 128


class ClientSecretHasher(BasePasswordHasher):
    algorithm = "hub_client_sha256"

    def salt(self) -> str:
        return get_random_string(16)

    def encode(self, password: str, salt: str) -> str:
        digest = hashlib.sha256(f"{salt}${password}".encode()).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded: str) -> dict:
        algorithm, salt, digest = encoded.split("$", 2)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "salt": salt, "hash": digest}

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded: str) -> dict:
        decoded = self.decode(encoded)
        return {
            "algorithm": decoded["algorithm"],
            "salt": mask_hash(decoded["salt"]),
            "hash": mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded: str) -> bool:
        return False

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass


def generate_client_secret() -> str:
    """256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def estimated_bits(secret: str) -> float:
    """Upper-bound entropy estimate: length x log2(alphabet of the character classes used),
    capped by the variety actually present (a repeated pattern is not random)."""
    alphabet = 0
    if any(c.islower() for c in secret):
        alphabet += 26
    if any(c.isupper() for c in secret):
        alphabet += 26
    if any(c.isdigit() for c in secret):
        alphabet += 10
    if any(not c.isalnum() for c in secret):
        alphabet += 33
    distinct = len(set(secret))
    if alphabet == 0 or distinct < 2:
        return 0.0
    per_char = min(math.log2(alphabet), math.log2(distinct) + 1)
    return len(secret) * per_char


def _has_repeats(secret: str, width: int = 5) -> bool:
    """A repeated 5-character run is a pattern, not randomness (random secrets hit this < 0.1%)."""
    seen = set()
    for start in range(len(secret) - width + 1):
        chunk = secret[start : start + width]
        if chunk in seen:
            return True
        seen.add(chunk)
    return False


def _looks_like_a_hash(secret: str) -> bool:
    from django.contrib.auth.hashers import identify_hasher

    try:
        identify_hasher(secret)
    except ValueError:
        return False
    return True


def check_secret_strength(secret: str) -> str | None:
    """None when the secret is acceptable, else why not (never quoting the secret)."""
    if _looks_like_a_hash(secret):
        # DOT stores such a value as is and would compare it in plain text: refuse it outright.
        return "a client secret must not look like a password hash (algorithm$…)"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"a client secret needs at least {MIN_SECRET_LENGTH} characters (got {len(secret)})"
    if len(set(secret)) < 12 or estimated_bits(secret) < MIN_SECRET_BITS or _has_repeats(secret):
        return (
            f"a client secret needs at least {MIN_SECRET_BITS} bits of randomness; "
            "generate one with `openssl rand -base64 32`"
        )
    return None
