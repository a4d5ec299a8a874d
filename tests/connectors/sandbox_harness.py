"""Connectors wired to an in-process sandbox (``httpx`` over ``SandboxTransport``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

from connectors.allegro import AllegroAuth, AllegroClient
from connectors.http import RetryPolicy, Timeouts
from connectors.ratelimit import BucketBackend, BucketRegistry, RateLimits
from connectors.wildberries import WildberriesClient
from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.transport import SandboxTransport
from sandbox.world import World

BASE = "http://sandbox.test"
# Fast retries so faulted runs stay quick; the policy itself is the default's shape.
FAST_RETRY = RetryPolicy(attempts=8, backoff_base=0.005, backoff_cap=0.05)


def settings_for(world: World) -> SimpleNamespace:
    """A stand-in for sellerpulse.settings.Settings with the attribute names the factories read."""
    from pydantic import SecretStr

    return SimpleNamespace(
        allegro_auth_url=f"{BASE}/allegro-auth",
        allegro_api_url=f"{BASE}/allegro-api",
        wb_statistics_url=f"{BASE}/wb-statistics",
        wb_analytics_url=f"{BASE}/wb-analytics",
        wb_feedbacks_url=f"{BASE}/wb-feedbacks",
        wb_content_url=f"{BASE}/wb-content",
        wb_marketplace_url=f"{BASE}/wb-marketplace",
        allegro_client_id=world.client_id,
        allegro_client_secret=SecretStr(world.client_secret),
    )


@dataclass
class Sandbox:
    app: Any
    world: World
    transport: SandboxTransport
    registry: BucketBackend

    @property
    def settings(self) -> SimpleNamespace:
        return settings_for(self.world)

    def wb(self, limits: RateLimits | None = None, retry: RetryPolicy = FAST_RETRY, **kw: Any) -> WildberriesClient:
        kw.setdefault("timeouts", Timeouts(connect=2, read=5))
        return WildberriesClient.from_settings(
            self.settings,
            transport=self.transport,
            limits=limits or RateLimits.unlimited(),
            registry=self.registry,
            retry=retry,
            **kw,
        )

    def allegro(self, limits: RateLimits | None = None, retry: RetryPolicy = FAST_RETRY, **kw: Any) -> AllegroClient:
        return AllegroClient.from_settings(
            self.settings,
            transport=self.transport,
            limits=limits or RateLimits.unlimited(),
            registry=self.registry,
            retry=retry,
            timeouts=Timeouts(connect=2, read=5),
            **kw,
        )

    def auth(self, retry: RetryPolicy = FAST_RETRY, **kw: Any) -> AllegroAuth:
        return AllegroAuth.from_settings(
            self.settings,
            transport=self.transport,
            limits=RateLimits.unlimited(),
            registry=self.registry,
            retry=retry,
            **kw,
        )

    def wb_token(self, shop: str = "wb1") -> str:
        return self.world.wb_token(shop)

    def allegro_pair(self, shop: str = "allegro1") -> Any:
        return self.world.allegro_pair(shop)

    def requests(self, host: str | None = None, path: str | None = None) -> list[Any]:
        return self.world.log.entries(host=host, path=path)


def make_sandbox(**config: Any) -> Sandbox:
    cfg = replace(SandboxConfig(), **config)
    app = create_app(cfg)
    return Sandbox(app, app.state.world, SandboxTransport(app=app), BucketRegistry())


class LateWaker:
    """The sleep of a client whose event loop is busy: every other wake-up comes `late` seconds
    after it was due (another task held the loop), the others on time."""

    def __init__(self, late: float) -> None:
        self.late, self.calls, self.late_wakeups = late, 0, 0

    async def __call__(self, seconds: float) -> None:
        self.calls += 1
        extra = self.late if self.calls % 2 else 0.0
        self.late_wakeups += extra > 0
        await asyncio.sleep(seconds + extra)
