"""Checking a WB token with one cheap call before a shop is stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
from pydantic import SecretStr

from api.services.jwt import claim
from connectors.http import RetryPolicy, Timeouts
from connectors.wildberries.client import WildberriesClient
from sellerpulse.settings import Settings, get_settings
from storage.ratelimit import shared_buckets


@dataclass(frozen=True)
class WbAccount:
    seller_id: str | None  # from the token's `sid` claim: recognises a reconnected seller


class WbTokenVerifier(Protocol):
    async def verify(self, token: SecretStr) -> WbAccount:
        """Return the account, or raise a connectors.errors exception:
        CredentialsRejected (401) means the token is bad; anything else means "try again"."""
        ...


# One try, short timeouts: the person is waiting, and a failure here only means "try again".
VERIFY_RETRY = RetryPolicy(attempts=1)
VERIFY_TIMEOUTS = Timeouts(connect=5.0, read=10.0, write=5.0, pool=5.0)


class ConnectorWbVerifier:
    """Reads one unanswered review (`take=1`): the feedbacks API is cheap and generously rate-limited,
    whereas the statistics API allows one call a minute, which the first sync needs."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        client_factory: Callable[[], WildberriesClient] | None = None,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._factory = client_factory

    def _client(self) -> WildberriesClient:
        if self._factory is not None:
            return self._factory()
        settings = self._settings or get_settings()
        return WildberriesClient.from_settings(
            settings,
            transport=self._transport,
            retry=VERIFY_RETRY,
            timeouts=VERIFY_TIMEOUTS,
            registry=shared_buckets(settings),  # the workers' buckets of this token
        )

    async def verify(self, token: SecretStr) -> WbAccount:
        async with self._client() as client:
            pages = client.iter_feedbacks(token, answered=False, take=1)
            try:
                async for _page in pages:
                    break  # the first page is proof enough
            finally:
                await pages.aclose()  # type: ignore[attr-defined]
        return WbAccount(seller_id=claim(token.get_secret_value(), "sid"))
