"""WB API tokens: JWT-shaped (`header.payload.signature`, base64url) with the
claims the real ones carry: `id` (token id, what the request log stores),
`s` (category bitmask), `sid` (seller), `exp` (unix seconds). Signed with a
per-sandbox HMAC key so a tampered or foreign token is "malformed".

The token type (facts page: limits are per seller account AND token type; "a plain Base token
gets 1 per 3 hours on orders") rides in the sandbox's own claim `kind` ("personal", the default,
or "base"); how real tokens mark their type is not on the facts page, so a client must learn a
token's limits from its 429s, never from this claim."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

# Bit numbers of the `s` claim as WB documents them.
CATEGORY_BITS: dict[str, int] = {
    "content": 1,
    "analytics": 2,
    "prices": 3,
    "marketplace": 4,
    "statistics": 5,
    "promotion": 6,
    "feedbacks": 7,
}
ALL_CATEGORIES = ("content", "analytics", "marketplace", "statistics", "feedbacks")
TOKEN_TTL = 180 * 86400
TOKEN_KINDS = ("personal", "base")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mask_for(categories: tuple[str, ...] | list[str]) -> int:
    mask = 0
    for name in categories:
        mask |= 1 << CATEGORY_BITS[name]
    return mask


@dataclass(frozen=True)
class WbClaims:
    token_id: str
    seller_id: str
    mask: int
    exp: int
    kind: str = "personal"  # TOKEN_KINDS: which rate limits apply (sandbox.ratelimit.wb_rate)

    def allows(self, category: str) -> bool:
        return bool(self.mask & (1 << CATEGORY_BITS[category]))


class TokenError(Exception):
    """Raised with a WB-like `detail` for 401 bodies."""


def issue(key: bytes, claims: WbClaims) -> str:
    header = _b64(json.dumps({"alg": "HS256", "kid": "sandbox", "typ": "JWT"}).encode())
    body = {
        "ent": 1,
        "exp": claims.exp,
        "id": claims.token_id,
        "iid": 1,
        "oid": 1,
        "s": claims.mask,
        "sid": claims.seller_id,
        "t": False,
        "uid": 1,
    }
    if claims.kind != "personal":
        body["kind"] = claims.kind
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    sig = _b64(hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{sig}"


def verify(key: bytes, token: str) -> WbClaims:
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("token is malformed")
    expected = _b64(hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, parts[2]):
        raise TokenError("token is malformed: signature is invalid")
    try:
        body = json.loads(_unb64(parts[1]))
        kind = str(body.get("kind", "personal"))
        if kind not in TOKEN_KINDS:
            raise ValueError(kind)
        return WbClaims(str(body["id"]), str(body["sid"]), int(body["s"]), int(body["exp"]), kind)
    except (ValueError, KeyError, TypeError):
        raise TokenError("token is malformed") from None
