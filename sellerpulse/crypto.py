"""Secrets at rest: credentials are encrypted with the application's secret key.

Fernet (AES-128-CBC + HMAC-SHA256) via `cryptography.fernet.MultiFernet`: the first key
encrypts, every key can decrypt, so a key rotation is "put the new key first, keep the
old ones in SELLERPULSE_OLD_SECRET_KEYS, run `sellerpulse secret-key rotate`, then drop
the old keys".
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DecryptionError(RuntimeError):
    """A stored secret could not be decrypted with any configured key."""


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one secret key is required")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as exc:
            # The message from cryptography never contains the key itself.
            raise ValueError(f"SELLERPULSE_SECRET_KEY is not a valid Fernet key: {exc}") from None

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken:
            raise DecryptionError(
                "stored credentials cannot be decrypted: the secret key changed "
                "(add the previous key to SELLERPULSE_OLD_SECRET_KEYS)"
            ) from None

    def encrypt_json(self, value: dict[str, Any]) -> bytes:
        return self.encrypt(json.dumps(value, separators=(",", ":")))

    def decrypt_json(self, token: bytes) -> dict[str, Any]:
        return json.loads(self.decrypt(token))

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt with the current (first) key."""
        try:
            return self._fernet.rotate(bytes(token))
        except InvalidToken:
            raise DecryptionError("stored credentials cannot be decrypted with any configured key") from None
