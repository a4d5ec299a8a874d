"""Allegro OAuth state: device codes, token pairs, rotation, revocation.

Times are sandbox epoch seconds. Rules (facts page):
* device code: lives `expires_in` (3600 s); polling faster than `interval`
  gets `slow_down` and the interval grows by 5 s (RFC 8628); a code yields a
  token once, then `invalid_request` "Invalid device code".
* access token: 12 h (`expires_in` 43199); refresh token: 90 days.
* refresh rotates: the old access token dies at once; the old refresh token is
  accepted again for 60 s and then answers with the SAME successor pair (an
  idempotent retry after a lost response), afterwards `invalid_grant`.
* revocation (operator, or the `revoke` fault) kills every pair of the shop:
  API calls get 401 invalid_token, refreshes get invalid_grant.
* `token_requests` (off by default): an access token dies after that many API
  requests (401 invalid_token), like one whose 12 h ran out in a long sync; its
  refresh token lives on.
* `rotate` refreshes a shop's live pair as another process would (a second
  worker, a second install): the old access token dies, the old refresh token
  is spent (accepted again only within the grace).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

DEVICE_TTL = 3600
POLL_INTERVAL = 5
ACCESS_TTL = 43199
REFRESH_TTL = 90 * 86400
REUSE_GRACE = 60.0
SCOPE = "allegro:api:orders:read allegro:api:sale:offers:read allegro:api:profile:read"


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(error)
        self.error, self.description, self.status = error, description, status


@dataclass
class DeviceGrant:
    device_code: str
    user_code: str
    client_id: str
    expires_at: float
    interval: int = POLL_INTERVAL
    last_poll: float | None = None
    state: str = "pending"  # pending | approved | denied | used
    shop: str | None = None


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    jti: str
    shop: str
    client_id: str
    issued_at: float
    access_expires: float
    refresh_expires: float
    revoked: bool = False
    access_dead: bool = False  # rotated away
    uses: int = 0  # API requests made with the access token
    spent_at: float | None = None  # refresh token used at
    successor: TokenPair | None = field(default=None, repr=False)

    def token_response(self) -> dict[str, object]:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "refresh_token": self.refresh_token,
            "expires_in": ACCESS_TTL,
            "scope": SCOPE,
            "allegro_api": True,
            "jti": self.jti,
        }


class AllegroAuth:
    def __init__(self, seed: int, client_id: str, client_secret: str, shops: list[str], auto_approve: bool) -> None:
        self.seed = seed
        self.client_id, self.client_secret = client_id, client_secret
        self.shops = shops
        self.auto_approve = auto_approve
        self.devices: dict[str, DeviceGrant] = {}
        self.by_access: dict[str, TokenPair] = {}
        self.by_refresh: dict[str, TokenPair] = {}
        self._counter = itertools.count(1)
        self._auto_next = 0
        self.token_requests: int | None = None  # access tokens die after this many requests

    def _secret(self, kind: str) -> str:
        n = next(self._counter)
        return hashlib.blake2b(f"{self.seed}:{kind}:{n}".encode(), digest_size=24).hexdigest()

    # -- device flow ----------------------------------------------------------
    def start_device(self, client_id: str, now: float) -> DeviceGrant:
        user = self._secret("user").upper()
        user_code = "".join(c for c in user if c.isalnum())[:9]
        grant = DeviceGrant(self._secret("device"), user_code, client_id, now + DEVICE_TTL)
        self.devices[grant.device_code] = grant
        if self.auto_approve and self.shops:
            grant.state, grant.shop = "approved", self.shops[self._auto_next % len(self.shops)]
            self._auto_next += 1
        return grant

    def find_device(self, code: str) -> DeviceGrant | None:
        """By device code, or by user code with or without spaces."""
        if code in self.devices:
            return self.devices[code]
        compact = code.replace(" ", "").replace("-", "").upper()
        return next((g for g in self.devices.values() if g.user_code == compact), None)

    def decide(self, code: str, approve: bool, shop: str | None, now: float) -> DeviceGrant:
        grant = self.find_device(code)
        if grant is None or grant.state == "used" or now >= grant.expires_at:
            raise KeyError(code)
        if approve:
            target = shop or self.shops[0]
            if target not in self.shops:
                raise ValueError(f"unknown Allegro shop {target!r}")
            grant.state, grant.shop = "approved", target
        else:
            grant.state = "denied"
        return grant

    def poll(self, device_code: str, client_id: str, now: float) -> TokenPair:
        grant = self.devices.get(device_code)
        if grant is None or grant.state == "used" or grant.client_id != client_id:
            raise OAuthError("invalid_request", "Invalid device code")
        if now >= grant.expires_at:
            raise OAuthError("expired_token", "Device code expired")
        if grant.state == "denied":
            raise OAuthError("access_denied", "The user denied the authorization request")
        too_fast = grant.last_poll is not None and now - grant.last_poll < grant.interval
        grant.last_poll = now
        if too_fast:
            grant.interval += 5
            raise OAuthError("slow_down", "Polling too frequently, slow down")
        if grant.state == "pending":
            raise OAuthError("authorization_pending", "Authorization pending")
        grant.state = "used"
        assert grant.shop is not None
        return self.issue(grant.shop, client_id, now)

    # -- tokens ---------------------------------------------------------------
    def issue(self, shop: str, client_id: str, now: float) -> TokenPair:
        pair = TokenPair(
            access_token="sbx-at-" + self._secret("access"),
            refresh_token="sbx-rt-" + self._secret("refresh"),
            jti=self._secret("jti")[:32],
            shop=shop,
            client_id=client_id,
            issued_at=now,
            access_expires=now + ACCESS_TTL + 1,
            refresh_expires=now + REFRESH_TTL,
        )
        self.by_access[pair.access_token] = pair
        self.by_refresh[pair.refresh_token] = pair
        return pair

    def refresh(self, refresh_token: str, client_id: str, now: float) -> TokenPair:
        pair = self.by_refresh.get(refresh_token)
        if pair is None or pair.client_id != client_id:
            raise OAuthError("invalid_grant", "Invalid refresh token: unknown")
        if pair.revoked or now >= pair.refresh_expires:
            raise OAuthError("invalid_grant", "Invalid refresh token: revoked or expired")
        if pair.spent_at is not None:
            successor = pair.successor
            if (
                now - pair.spent_at <= REUSE_GRACE
                and successor is not None
                and successor.spent_at is None
                and not successor.revoked
            ):
                return successor
            raise OAuthError("invalid_grant", "Invalid refresh token: already used")
        new = self.issue(pair.shop, client_id, now)
        pair.spent_at, pair.successor, pair.access_dead = now, new, True
        return new

    def check_access(self, token: str, now: float) -> TokenPair:
        pair = self.by_access.get(token)
        if pair is None or pair.revoked or pair.access_dead:
            raise OAuthError("invalid_token", "Invalid access token", status=401)
        if now >= pair.access_expires or (self.token_requests is not None and pair.uses >= self.token_requests):
            raise OAuthError("invalid_token", f"Access token expired: {pair.jti}", status=401)
        pair.uses += 1
        return pair

    def live_pair(self, shop: str | None = None, jti: str | None = None) -> TokenPair | None:
        """The newest pair of a shop (or the pair with this jti) whose refresh token is unspent."""
        live = [
            p
            for p in self.by_refresh.values()
            if ((shop is not None and p.shop == shop) or (jti is not None and p.jti == jti))
            and not p.revoked
            and p.spent_at is None
        ]
        return live[-1] if live else None  # issue order: the dict keeps it

    def rotate(self, now: float, shop: str | None = None, jti: str | None = None) -> TokenPair:
        """Refresh a shop's live pair as another process would; KeyError when it has none."""
        pair = self.live_pair(shop, jti)
        if pair is None:
            raise KeyError(shop or jti)
        return self.refresh(pair.refresh_token, pair.client_id, now)

    def revoke(self, shop: str | None = None, jti: str | None = None) -> int:
        """Revoke every pair of a shop (or the pair with this jti)."""
        n = 0
        for pair in self.by_access.values():
            matches = (shop is not None and pair.shop == shop) or (jti is not None and pair.jti == jti)
            if matches and not pair.revoked:
                pair.revoked = True
                n += 1
        return n

    def revoke_family_of(self, pair: TokenPair) -> None:
        """Password change / logout-everywhere: all pairs of that shop."""
        self.revoke(shop=pair.shop)
