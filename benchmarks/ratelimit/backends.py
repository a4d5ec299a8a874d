"""The three places a bucket can live, behind one `connectors.ratelimit.BucketBackend`.

- memory: `connectors.ratelimit.BucketRegistry`, this process only (the connectors' default).
- postgres: `storage.ratelimit.PgBucketBackend`, one row per bucket (the product's default).
- prefect-gcl: a Prefect global concurrency limit with slot decay per bucket (limit = burst,
  decay = rate), taken with `prefect.concurrency.asyncio.rate_limit`. Built here only as
  far as measuring needs: it has no way to pause a bucket for an arbitrary time (a 429's
  `X-Ratelimit-Retry`) nor to charge extra tokens, so those raise.
"""

from __future__ import annotations

import asyncio
import re

from connectors.ratelimit import BucketBackend, BucketRegistry, Rate, Sleep
from storage.ratelimit import PgBucketBackend, limiter_engine, owner_key

KINDS = ("memory", "postgres", "prefect-gcl")
SECRET = "benchmark-install-secret-key"


class GclBucket:
    def __init__(self, name: str, rate: Rate) -> None:
        self.name, self.rate = name, rate

    async def acquire(self, sleep: Sleep = asyncio.sleep) -> None:
        from prefect.concurrency.asyncio import rate_limit

        # Prefect's client sleeps on its own (the server's 423 + Retry-After), not with `sleep`.
        await rate_limit(self.name, occupy=1, strict=True)

    def pause_for(self, seconds: float) -> None:
        raise NotImplementedError("a GCL cannot be paused for a given time")

    def charge(self, tokens: float) -> None:
        raise NotImplementedError("a GCL cannot be charged after the fact")


class GclBackend:
    """One global concurrency limit per (credential, category), created on first use."""

    def __init__(self, secret: str) -> None:
        self._owner = owner_key(secret)
        self._buckets: dict[str, GclBucket] = {}

    def bucket(self, credential: str, category: str, rate: Rate) -> GclBucket:
        name = "rl-" + re.sub(r"[^a-z0-9-]", "-", f"{self._owner(credential)}-{category}".lower())
        if name not in self._buckets:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                client.upsert_global_concurrency_limit_by_name(name, rate.burst, rate.per_second)
            self._buckets[name] = GclBucket(name, rate)
        return self._buckets[name]


def open_backend(kind: str, db_url: str) -> BucketBackend:
    if kind == "memory":
        return BucketRegistry()
    if kind == "postgres":
        return PgBucketBackend(limiter_engine(db_url), SECRET)
    if kind == "prefect-gcl":
        return GclBackend(SECRET)
    raise ValueError(f"unknown backend {kind!r}")
