"""Reading one claim of a JWT-shaped token, without verifying it.

Only ever used after the marketplace accepted the token (so its claims are the marketplace's),
and only for a non-secret identity (seller or user id) to recognise a reconnected account.
"""

from __future__ import annotations

import base64
import json
from typing import Any


def claim(token: str, *names: str) -> str | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        body: Any = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    for name in names:
        value = body.get(name)
        if value not in (None, ""):
            return str(value)
    return None
