"""A software authenticator for tests: P-256 keys, "none" attestation, CBOR by hand.

What navigator.credentials.create()/get() would answer, made in Python, so the server's
checks run against real signatures: a wrong origin, RP id, challenge, counter or user
handle is a real mistake here, not a mocked one.
"""

import base64
import hashlib
import json
import os
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

RP_ID = "portal.example"
ORIGIN = "https://portal.example"

# Authenticator data flags (WebAuthn 6.1).
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SoftAuthenticator:
    """A software authenticator: one credential, and a counter unless `counts` is False."""

    def __init__(
        self,
        *,
        counts: bool = True,
        backup_eligible: bool = False,
        aaguid: bytes = bytes(16),
        transports: tuple[str, ...] = ("usb",),
        attachment: str = "cross-platform",
    ) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.counts = counts
        self.sign_count = 0
        self.backup_eligible = backup_eligible
        self.aaguid = aaguid
        self.transports = list(transports)
        self.attachment = attachment
        self.user_handle: bytes | None = None
        # A PIN or biometrics checked (UV); a plain security key only tests presence.
        self.user_verified = True

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        # kty EC2, alg ES256, crv P-256, x, y (RFC 9053).
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def auth_data(self, rp_id: str, *, attested: bool) -> bytes:
        verified = UV if self.user_verified else 0
        flags = UP | verified | (BE | BS if self.backup_eligible else 0) | (AT if attested else 0)
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags])
        data += struct.pack(">I", self.sign_count)
        if attested:
            data += self.aaguid + struct.pack(">H", len(self.credential_id))
            data += self.credential_id + self.cose_key()
        return data

    @staticmethod
    def client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()

    def create(self, options_json: str, *, origin: str = ORIGIN, rp_id: str | None = None) -> str:
        """navigator.credentials.create(): the registration response, as JSON text."""
        options = json.loads(options_json)
        self.user_handle = base64.urlsafe_b64decode(options["user"]["id"] + "==")
        client_data = self.client_data("webauthn.create", options["challenge"], origin)
        attestation = cbor2.dumps(
            {
                "fmt": "none",
                "attStmt": {},
                "authData": self.auth_data(rp_id or options["rp"]["id"], attested=True),
            }
        )
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "authenticatorAttachment": self.attachment,
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": self.transports,
                },
            }
        )

    def get(
        self,
        options_json: str,
        *,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        sign_count: int | None = None,
        user_handle: bytes | None = None,
    ) -> str:
        """navigator.credentials.get(): the assertion, as JSON text; the counter moves on
        (or is set to `sign_count`, as a cloned key's would be)."""
        options = json.loads(options_json)
        if sign_count is not None:
            self.sign_count = sign_count
        elif self.counts:
            self.sign_count += 1
        auth_data = self.auth_data(rp_id or options["rpId"], attested=False)
        client_data = self.client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        handle = user_handle if user_handle is not None else self.user_handle
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "authenticatorAttachment": self.attachment,
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(handle) if handle is not None else None,
                },
            }
        )
