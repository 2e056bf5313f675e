"""A real software authenticator for the tests: an EC P-256 key that answers the hub's options with
a "none"-attestation registration and signed assertions, as a phone or a security key would (CTAP2
authenticator data, COSE key, ECDSA over authenticatorData ‖ SHA-256(clientDataJSON)). It is not a
mock of the library: the hub verifies what it produces with py_webauthn, bit for bit."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import uuid
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass
class SoftAuthenticator:
    """One discoverable credential. `origin` is what the "browser" reports in clientDataJSON."""

    origin: str
    user_verified: bool = True
    backup_eligible: bool = True
    backed_up: bool = True
    counts: bool = True  # False: always sign count 0 (many synced passkeys)
    aaguid: bytes = field(default_factory=lambda: uuid.UUID("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4").bytes)
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    sign_count: int = 0
    rp_id: str = ""
    user_handle: bytes = b""

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def _flags(self, *, attested: bool) -> int:
        flags = UP
        flags |= UV if self.user_verified else 0
        flags |= BE if self.backup_eligible else 0
        flags |= BS if self.backed_up else 0
        flags |= AT if attested else 0
        return flags

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}, separators=(",", ":")).encode()

    def create(self, options: dict, *, origin: str | None = None) -> dict:
        """navigator.credentials.create(): the JSON a browser's `credential.toJSON()` gives."""
        self.rp_id = options["rp"]["id"]
        self.user_handle = from_b64url(options["user"]["id"])
        excluded = {c["id"] for c in options.get("excludeCredentials", [])}
        if self.id in excluded:
            raise ValueError("InvalidStateError: this authenticator already holds an excluded credential")
        auth_data = (hashlib.sha256(self.rp_id.encode()).digest() + bytes([self._flags(attested=True)])
                     + struct.pack(">I", self.sign_count) + self.aaguid
                     + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_key())
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": self.id, "rawId": self.id, "type": "public-key", "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"], origin)),
                "attestationObject": b64url(attestation),
                "transports": ["internal", "hybrid"],
            },
        }

    def get(self, options: dict, *, origin: str | None = None, sign_count: int | None = None,
            rp_id: str | None = None) -> dict:
        """navigator.credentials.get(): a signed assertion for the options' challenge."""
        if sign_count is not None:
            self.sign_count = sign_count
        elif self.counts:
            self.sign_count += 1
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        auth_data = (hashlib.sha256((rp_id or options.get("rpId") or self.rp_id).encode()).digest()
                     + bytes([self._flags(attested=False)]) + struct.pack(">I", self.sign_count))
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": self.id, "rawId": self.id, "type": "public-key", "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(self.user_handle),
            },
        }
