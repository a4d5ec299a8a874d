"""40 bots at once against `--workers 2` on a small pool: polls (fast path and full route),
acks, batch polls and shop reads, with a sync writing notifications meanwhile. No response is
a 500 and none hangs: requests wait for a database slot on the event loop instead of holding
a connection while they wait for a thread (issue 12: 94 HTTP 500, QueuePool timeouts)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import Engine

from sellerpulse.notify.drafts import Draft
from storage import apikeys, outbox
from storage.db import session_scope
from storage.people import register_person
from storage.settings_repo import update_settings
from storage.shops import add_member, create_shop
from tests.api.served import serve_api

BOTS = 40
ROUNDS = 3
BASE_TID = 5000


def _fill(engine: Engine) -> tuple[str, list[int]]:
    with session_scope(engine) as session:
        key = apikeys.create_key(session, name="bots").secret
        shops = []
        for i in range(BOTS):
            person, _ = register_person(session, telegram_id=BASE_TID + i, profile={})
            update_settings(session, person_id=person.id, values={"grouping_enabled": False})
            if i % 4 == 0:
                shops.append(
                    create_shop(
                        session, marketplace="wb", name=f"s{i}", credentials={"token": "t"}, owner_id=person.id
                    ).id
                )
            else:
                add_member(session, shop_id=shops[-1], person_id=person.id)
    return key, shops


def _sync(engine: Engine, shops: list[int], stop: threading.Event) -> int:
    """A sync writing notifications in its own transactions, as the pipeline does."""
    written, n = 0, 0
    while not stop.is_set():
        with session_scope(engine) as session:
            shop = shops[n % len(shops)]
            drafts = [Draft("new_order", f"c:{n}:{j}", f"{n}-{j}", {"srid": f"{n}-{j}"}) for j in range(5)]
            written += outbox.add(session, shop_id=shop, drafts=drafts)
        n += 1
        stop.wait(0.02)
    return written


async def _call(client: httpx.AsyncClient, method: str, path: str, outcomes: Counter[object], **kw: object) -> object:
    try:
        r = await client.request(method, path, **kw)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:  # a reset or a hang: counted, so the test says which request
        outcomes[(method, path, type(exc).__name__)] += 1
        return None
    outcomes[r.status_code] += 1
    return r


async def _bot(client: httpx.AsyncClient, i: int, outcomes: Counter[object]) -> None:
    rng = random.Random(i)
    tid = BASE_TID + i
    for _ in range(ROUNDS):
        page = await _call(client, "GET", "/api/v1/notifications", outcomes, params={"telegram_id": tid})
        if isinstance(page, httpx.Response) and page.status_code == 200:
            ack = {"cursor": page.json()["next_cursor"]}
            await _call(client, "POST", "/api/v1/notifications/ack", outcomes, params={"telegram_id": tid}, json=ack)
        others = [BASE_TID + rng.randrange(BOTS) for _ in range(5)]
        old_bot = {"telegram_id": tid, "last_check": "2026-01-01T00:00:00Z"}
        await asyncio.gather(
            _call(client, "POST", "/api/v1/notifications/poll", outcomes, json={"telegram_ids": others}),
            _call(client, "GET", "/api/v1/shops", outcomes, params={"telegram_id": tid}),
            _call(client, "GET", "/api/v1/notifications", outcomes, params=old_bot),
            _call(client, "GET", "/api/v1/settings", outcomes, params={"telegram_id": tid}),
        )


async def _load(base: str, key: str) -> Counter[object]:
    statuses: Counter[object] = Counter()
    # Idle connections dropped before uvicorn's keep-alive timeout (5 s) closes them under us.
    limits = httpx.Limits(max_connections=BOTS * 4, max_keepalive_connections=BOTS * 4, keepalive_expiry=2)
    # A generous timeout: a request held past it is a hang, reported as the failure it is.
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, limits=limits, timeout=20) as client:
        await asyncio.gather(*(_bot(client, i, statuses) for i in range(BOTS)))
    return statuses


def test_many_bots_on_a_small_pool_get_no_500(clean_engine: Engine, database_url: str, tmp_path: Path) -> None:
    key, shops = _fill(clean_engine)
    stop = threading.Event()
    written: list[int] = []
    # Two connections per worker, no overflow: far fewer than the requests in flight.
    settings = {"API_POOL_SIZE": "2", "API_POOL_MAX_OVERFLOW": "0", "API_POOL_TIMEOUT_SECONDS": "15"}
    with serve_api(database_url, tmp_path, workers=2, **settings) as base:
        sync = threading.Thread(target=lambda: written.append(_sync(clean_engine, shops, stop)))
        sync.start()
        try:
            statuses = asyncio.run(_load(base, key))
        finally:
            stop.set()
            sync.join()
    assert sum(statuses.values()) == BOTS * ROUNDS * 6
    assert set(statuses) == {200}, statuses
    assert written and written[0] > 0
