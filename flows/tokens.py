"""refresh-tokens: refresh every Allegro token that expires within the window, one shop at a time each."""

from __future__ import annotations

from datetime import timedelta

from prefect import flow, task
from prefect.cache_policies import NONE

from connectors.errors import ReauthRequired
from flows.logs import run_logger
from storage.db import get_engine
from storage.migrate import require_head
from tasks.clients import Clients, make_clients
from tasks.retry import RETRY_DELAYS, retry_transient
from tasks.tokens import refresh_shop_token, shops_due


@task(
    name="refresh-allegro-token",
    retries=3,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NONE,
    task_run_name="refresh-allegro-token-{shop_id}",
)
async def refresh_token_task(shop_id: int, clients: Clients, window_seconds: int) -> str:
    try:
        await refresh_shop_token(get_engine(), clients, shop_id=shop_id, window=timedelta(seconds=window_seconds))
    except ReauthRequired:
        return "needs_reauth"
    return "ok"


@flow(name="refresh-tokens", retries=0)
async def refresh_tokens(window_seconds: int | None = None) -> dict[int, str]:
    """Refresh Allegro tokens expiring within `window_seconds` (default: the setting)."""
    engine = get_engine()
    require_head(engine)
    logger = run_logger()
    async with make_clients() as clients:
        window = window_seconds or clients.settings.token_refresh_window_seconds
        due = shops_due(engine, window=timedelta(seconds=window), now=clients.now())
        logger.info("%d Allegro shop(s) have a token expiring within %d s", len(due), window)
        results: dict[int, str] = {}
        for shop_id in due:
            try:
                results[shop_id] = await refresh_token_task(shop_id, clients, window)
            except Exception as exc:  # noqa: BLE001 - the shop stays active; the next run tries again
                logger.warning("refresh of shop %s failed, will retry on the next run: %s", shop_id, exc)
                results[shop_id] = "failed"
        return results
