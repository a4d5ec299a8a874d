"""Allegro OAuth for "device" apps: start the device flow, poll it, refresh tokens.

Talks to the auth host (``https://allegro.pl``) with HTTP Basic client credentials and
form bodies only (Allegro refuses query parameters and GET here). Refresh tokens
rotate: every refresh returns a new pair and the old one dies (after ~60 s of grace),
so the caller must store the returned pair before anything else, and never refresh
one account from two places at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from connectors import errors
from connectors.http import DEFAULT_RETRY, Call, HostClient, RetryPolicy, Timeouts, error_codes
from connectors.parsing import require
from connectors.ratelimit import DEFAULT_LIMITS, DEFAULT_REGISTRY, BucketBackend, Clock, RateLimits, Sleep

DEVICE_PATH = "/auth/oauth/device"
TOKEN_PATH = "/auth/oauth/token"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP = 5.0
AUTH_TIMEOUTS = Timeouts(read=30.0)  # RFC 8628 section 3.5

Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeviceAuthorization:
    """What to show the person (`user_code`, `verification_uri_complete`) and what to poll with."""

    device_code: SecretStr
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: float
    expires_at: datetime  # wall clock, for storage and display
    deadline: float  # on the client's monotonic clock, for polling

    @property
    def user_code_display(self) -> str:
        code = self.user_code.replace(" ", "")
        return " ".join(code[i : i + 3] for i in range(0, len(code), 3))


@dataclass(frozen=True)
class TokenPair:
    """An access/refresh pair. Secrets are SecretStr: they never show in repr or logs."""

    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: datetime  # access token expiry, aware UTC
    expires_in: int
    token_type: str = "bearer"
    scope: str | None = None
    jti: str | None = None


def _oauth_classify(response: httpx.Response) -> errors.ConnectorError:
    """OAuth error bodies -> our tree. Only the error *code* goes in messages: descriptions
    can quote what we sent."""
    try:
        body = response.json()
    except ValueError:
        body = None
    codes = error_codes(body)
    code = codes[0] if codes else ""
    status, path = response.status_code, response.request.url.path
    if code == "invalid_grant":
        return errors.ReauthRequired("refresh token rejected (invalid_grant): log in again", status=status, path=path)
    if status == 401 or code in ("invalid_client", "unauthorized_client"):
        return errors.CredentialsRejected(f"client credentials rejected ({code or status})", status=status, path=path)
    return errors.BadRequest(f"oauth request refused ({code or status})", status=status, path=path, codes=codes)


def _description(exc: errors.BadRequest) -> str:
    return " ".join(exc.codes).lower()


class AllegroAuth:
    """The Allegro auth host for one app (client id + secret)."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: Timeouts = AUTH_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        limits: RateLimits = DEFAULT_LIMITS,
        registry: BucketBackend = DEFAULT_REGISTRY,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        now: Now = _utcnow,
    ) -> None:
        self.client_id = client_id
        self._secret = client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        self._sleep, self._clock, self._now = sleep, clock, now
        self._limits, self._registry = limits, registry
        self._host = HostClient(
            base_url,
            name="allegro-auth",
            transport=transport,
            timeouts=timeouts,
            retry=retry,
            sleep=sleep,
            clock=clock,
        )

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> AllegroAuth:
        url = getattr(settings, "allegro_auth_url", None) or "https://allegro.pl"
        return cls(url, settings.allegro_client_id, settings.allegro_client_secret, **kwargs)

    async def aclose(self) -> None:
        await self._host.aclose()

    async def __aenter__(self) -> AllegroAuth:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _call(self, path: str, form: dict[str, str]) -> Call:
        bucket = None
        if not self._limits.disabled:
            bucket = self._registry.bucket(self.client_id, "allegro_auth", self._limits.for_category("allegro_auth"))
        return Call(
            "POST",
            path,
            form=form,
            bucket=bucket,
            classify=_oauth_classify,
            auth=httpx.BasicAuth(self.client_id, self._secret.get_secret_value()),
        )

    # -- device flow ----------------------------------------------------------

    async def start_device_flow(self, scope: str | None = None) -> DeviceAuthorization:
        form = {"client_id": self.client_id}
        if scope:
            form["scope"] = scope
        body, _ = await self._host.send(self._call(DEVICE_PATH, form))
        try:
            expires_in = int(require(body, "expires_in"))
            return DeviceAuthorization(
                device_code=SecretStr(str(require(body, "device_code"))),
                user_code=str(require(body, "user_code")),
                verification_uri=str(require(body, "verification_uri")),
                verification_uri_complete=body.get("verification_uri_complete"),
                expires_in=expires_in,
                interval=float(body.get("interval") or 5),
                expires_at=self._now() + timedelta(seconds=expires_in),
                deadline=self._clock() + expires_in,
            )
        except (TypeError, ValueError) as exc:
            raise errors.PayloadError("malformed device authorization response", path=DEVICE_PATH) from exc

    async def poll_device_flow(self, device: DeviceAuthorization) -> TokenPair:
        """Poll until the person approves (-> TokenPair), refuses (AccessDenied), the code
        expires (DeviceCodeExpired) or is unknown/used (InvalidDeviceCode).

        Waits `interval` between polls, +5 s on every slow_down; gives up at `expires_in`.
        Transient failures (network, 5xx, 429) do not end the flow: the code is still good.
        """
        interval = device.interval
        form = {"grant_type": DEVICE_GRANT, "device_code": device.device_code.get_secret_value()}
        while True:
            if self._clock() + interval > device.deadline:
                raise errors.DeviceCodeExpired("device code expired before approval", path=TOKEN_PATH)
            await self._sleep(interval)
            try:
                body, _ = await self._host.send(self._call(TOKEN_PATH, form))
                return self._token_pair(body)
            except errors.RateLimited:
                interval += SLOW_DOWN_STEP
            except errors.TransientError:
                continue
            except errors.ReauthRequired as exc:  # invalid_grant here means a spent/unknown code
                raise errors.InvalidDeviceCode("device code invalid or already used", path=TOKEN_PATH) from exc
            except errors.BadRequest as exc:
                interval = self._on_poll_error(exc, interval)

    def _on_poll_error(self, exc: errors.BadRequest, interval: float) -> float:
        codes = _description(exc)
        if "authorization_pending" in codes:
            return interval
        if "slow_down" in codes:
            return interval + SLOW_DOWN_STEP
        if "access_denied" in codes:
            raise errors.AccessDenied("the user refused access", path=TOKEN_PATH) from exc
        if "invalid_request" in codes or "invalid device code" in codes:
            raise errors.InvalidDeviceCode("device code invalid or already used", path=TOKEN_PATH) from exc
        # expired_token (undocumented) and any other 400: the codes are no longer usable.
        raise errors.DeviceCodeExpired(f"device flow ended ({codes or exc.status})", path=TOKEN_PATH) from exc

    # -- refresh --------------------------------------------------------------

    async def refresh(self, refresh_token: SecretStr | str) -> TokenPair:
        """Exchange a refresh token for a NEW pair (the old one stops working).

        ReauthRequired: spent or revoked refresh token (invalid_grant).
        TransientError: try again later; the old refresh token is still the one to use.
        """
        token = refresh_token.get_secret_value() if isinstance(refresh_token, SecretStr) else refresh_token
        form = {"grant_type": "refresh_token", "refresh_token": token}
        body, _ = await self._host.send(self._call(TOKEN_PATH, form))
        return self._token_pair(body)

    def _token_pair(self, body: Any) -> TokenPair:
        try:
            expires_in = int(require(body, "expires_in"))
            return TokenPair(
                access_token=SecretStr(str(require(body, "access_token"))),
                refresh_token=SecretStr(str(require(body, "refresh_token"))),
                expires_at=self._now() + timedelta(seconds=expires_in),
                expires_in=expires_in,
                token_type=str(body.get("token_type") or "bearer"),
                scope=body.get("scope"),
                jti=body.get("jti"),
            )
        except (TypeError, ValueError) as exc:
            raise errors.PayloadError("malformed token response", path=TOKEN_PATH) from exc
