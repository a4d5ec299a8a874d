"""Sandbox configuration (one frozen dataclass, passed to `create_app`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_START = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SandboxConfig:
    seed: int = 1
    scenario: str = "tiny"  # name or "name:key=value,..." (see sandbox.scenario)
    speed: float = 0.0  # sandbox seconds per real second; 0 = frozen (tests), CLI default 1
    start: datetime = DEFAULT_START  # sandbox time at startup (UTC)
    faults: str | None = None  # fault spec (see sandbox.faults)
    latency: str | None = None  # per-request latency per host, e.g. "allegro-api=150" (sandbox.latency); off
    rate_limits: bool = True
    rate_limit_scale: float = 1.0  # >1 refills buckets faster (tests, demos)
    wb_row_cap: int = 80_000  # WB statistics rows per response
    wb_retention_days: float = 90.0  # WB statistics: changes older than this are not served
    # WB statistics refresh every this many seconds and serve what the last refresh saw (the
    # real API: 1800); 0 = at once (the tests' default, like a frozen clock). The order feed is
    # always real time.
    wb_statistics_refresh_s: float = 0.0
    wb_feed_drift: float = 0.0  # share of order-feed rows with a field missing or an unknown status
    auto_approve: bool = False  # device codes approved at once (demo)
    allegro_client_id: str = "sellerpulse-sandbox-client"
    allegro_client_secret: str | None = None  # None: derived from the seed
    event_retention_s: float = 60 * 86400.0  # Allegro order event journal
    offer_event_retention_s: float = 86400.0
    # Allegro access tokens die (401 invalid_token) after this many API requests each, as when
    # their 12 h ran out mid-sync or another process rotated the pair; None: only after 12 h.
    allegro_token_requests: int | None = None
    slow_seconds: float = 2.0  # real seconds added by the `slow` fault
    timeout_seconds: float = 65.0  # real seconds held by the `timeout` fault
    request_log_size: int = 200_000
    # Keep the bodies of WB statistics reads and Allegro checkout-form listings and answer the
    # same request again with the same bytes (sandbox.response_cache; benchmarks). Frozen clock only.
    cache_responses: bool = False
