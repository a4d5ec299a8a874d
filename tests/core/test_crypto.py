from __future__ import annotations

import pytest

from sellerpulse.crypto import DecryptionError, SecretBox
from sellerpulse.settings import generate_secret_key


def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    box = SecretBox([generate_secret_key()])
    sealed = box.encrypt_json({"access_token": "tok-123456", "refresh_token": "ref-654321"})
    assert b"tok-123456" not in sealed and b"ref-654321" not in sealed
    assert box.decrypt_json(sealed) == {"access_token": "tok-123456", "refresh_token": "ref-654321"}


def test_rotation_keeps_old_ciphertexts_readable_then_moves_them() -> None:
    old, new = generate_secret_key(), generate_secret_key()
    sealed_old = SecretBox([old]).encrypt("token")
    rotating = SecretBox([new, old])
    assert rotating.decrypt(sealed_old) == "token"
    moved = rotating.rotate(sealed_old)
    assert SecretBox([new]).decrypt(moved) == "token"
    with pytest.raises(DecryptionError):
        SecretBox([new]).decrypt(sealed_old)


def test_wrong_key_error_does_not_leak_keys() -> None:
    key, other = generate_secret_key(), generate_secret_key()
    sealed = SecretBox([key]).encrypt("token")
    with pytest.raises(DecryptionError) as err:
        SecretBox([other]).decrypt(sealed)
    assert key not in str(err.value) and other not in str(err.value)


def test_malformed_key_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="SELLERPULSE_SECRET_KEY") as err:
        SecretBox(["not-a-fernet-key"])
    assert "not-a-fernet-key" not in str(err.value)
