"""The connector clients a flow run uses: one long-lived client per marketplace host.

Built from settings; tests and the demo pass a `transport` (e.g. the in-process sandbox)
and rate limits of their own. Rate-limit buckets live in PostgreSQL (storage.ratelimit),
shared by every worker; pass `registry=` to use others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.allegro.auth import AllegroAuth
from connectors.allegro.client import AllegroClient
from connectors.ratelimit import RateLimits
from connectors.wildberries.client import WildberriesClient
from sellerpulse.settings import Settings, get_settings
from storage.ratelimit import shared_buckets


@dataclass
class Clients:
    wb: WildberriesClient
    allegro: AllegroClient
    allegro_auth: AllegroAuth
    settings: Settings = field(default_factory=get_settings)
    # The marketplaces' "now": the wall clock, or the sandbox's clock in tests and demos.
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: RateLimits | None = None,
        now: Callable[[], datetime] | None = None,
        **kwargs: Any,
    ) -> Clients:
        settings = settings or get_settings()
        # Buckets in PostgreSQL: every worker shares the marketplaces' budgets (invariant 9).
        common: dict[str, Any] = {"transport": transport, "registry": shared_buckets(settings), **kwargs}
        if limits is None and settings.marketplace_rate_scale != 1.0:
            limits = RateLimits().scaled(settings.marketplace_rate_scale)
        if limits is not None:
            common["limits"] = limits
        return cls(
            wb=WildberriesClient.from_settings(settings, **common),
            allegro=AllegroClient.from_settings(settings, **common),
            allegro_auth=AllegroAuth.from_settings(settings, **common),
            settings=settings,
            **({"now": now} if now is not None else {}),
        )

    async def aclose(self) -> None:
        await self.wb.aclose()
        await self.allegro.aclose()
        await self.allegro_auth.aclose()

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


ClientFactory = Callable[[], Clients]
_factory: ClientFactory | None = None


def set_client_factory(factory: ClientFactory | None) -> None:
    """Where flows get their clients (tests point them at the in-process sandbox); None: settings."""
    global _factory
    _factory = factory


def make_clients() -> Clients:
    return _factory() if _factory is not None else Clients.from_settings()


@asynccontextmanager
async def borrowed_or_new(clients: Clients | None) -> AsyncIterator[Clients]:
    """The caller's clients as they are, or new ones (from the factory) closed on exit."""
    if clients is not None:
        yield clients
        return
    async with make_clients() as own:
        yield own
