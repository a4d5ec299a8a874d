"""The sync against the sandbox: the database ends equal to the marketplace's ground truth."""

from __future__ import annotations

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from connectors.http import Timeouts
from flows.sync import sync_one
from sandbox.world import World
from storage import upserts
from storage.models import Notification, Order, Product, Shop, SyncRun
from tasks.clients import Clients
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.flows.truth import assert_allegro_matches, assert_wb_matches


async def test_first_sync_backs_up_everything_silently(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    for shop_id in shops.values():
        reports = await sync_one(shop_id, clients=clients)
        assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]

    assert_wb_matches(clean_engine, world, "wb1", shops["wb1"])
    assert_allegro_matches(clean_engine, world, "allegro1", shops["allegro1"])
    with Session(clean_engine) as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 0
        assert all(shop.notify_from is not None for shop in s.scalars(select(Shop)))
        runs = s.scalars(select(SyncRun)).all()
        assert {r.status for r in runs} == {"success"} and all(r.finished_at for r in runs)


FAULTS = "*:429=0.08,5xx=0.08,reset=0.04,truncate=0.04,slow=0.02,timeout=0.02;allegro-api:dup=0.3"


async def test_sync_with_faults_on_still_matches_the_truth(clean_engine: Engine) -> None:
    app = make_sandbox(faults=FAULTS, seed=7, slow_seconds=0.01, timeout_seconds=0.5)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    async with clients_for(app, timeouts=Timeouts(read=0.2)) as clients:
        for shop_id in shops.values():
            reports = await sync_one(shop_id, clients=clients)
            assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    faulted = [r for r in world.log.entries() if r.fault]
    assert len(faulted) >= 5, "the faults really happened"
    assert_wb_matches(clean_engine, world, "wb1", shops["wb1"])
    assert_allegro_matches(clean_engine, world, "allegro1", shops["allegro1"])


async def test_interrupted_sync_resumes_to_the_same_state(clean_engine: Engine, monkeypatch) -> None:
    app = make_sandbox(scenario="lively", wb_row_cap=50)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    calls = {"n": 0}
    real = upserts.upsert_orders

    def failing_on_third_page(session, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected: the process died between pages")
        return real(session, **kw)

    async with clients_for(app, wb_statistics_page_rows=50) as clients:
        monkeypatch.setattr(upserts, "upsert_orders", failing_on_third_page)
        reports = await sync_one(shops["wb1"], streams=["orders"], clients=clients)
        assert reports[0].status == "failed" and "injected" in reports[0].error
        with Session(clean_engine) as s:
            partial = s.scalar(select(func.count()).select_from(Order).where(Order.shop_id == shops["wb1"]))
        assert 0 < partial < len(world.wb_orders("wb1"))
        monkeypatch.setattr(upserts, "upsert_orders", real)
        await sync_one(shops["wb1"], clients=clients)
    assert_wb_matches(clean_engine, world, "wb1", shops["wb1"])


async def test_an_idle_shop_makes_one_request_per_stream_and_writes_nothing(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    for shop_id in shops.values():
        await sync_one(shop_id, clients=clients)
    seq = max(r.seq for r in world.log.entries())
    with Session(clean_engine) as s:
        before = _row_versions(s)
    for shop_id in shops.values():
        reports = await sync_one(shop_id, clients=clients)
        for r in reports:
            assert (r.counts.inserted, r.counts.updated, r.counts.stale_refused) == (0, 0, 0), r
    with Session(clean_engine) as s:
        assert _row_versions(s) == before
    calls = world.log.entries(since_seq=seq)
    per_path: dict[tuple[str, str, bool], int] = {}
    for r in calls:
        # Reviews are read in two passes (unanswered, answered): one request each.
        key = (r.host, r.path, "isAnswered=true" in r.query)
        per_path[key] = per_path.get(key, 0) + 1
    assert all(n == 1 for n in per_path.values()), per_path
    assert ("wb-content", "/content/v2/get/cards/list", False) not in per_path  # cards are fresh: not re-read


def _row_versions(session: Session) -> dict[str, object]:
    tables = (
        "orders",
        "order_lines",
        "wb_sales",
        "reviews",
        "products",
        "stocks",
        "stock_history",
        "allegro_order_events",
        "customer_returns",
    )
    return {t: session.execute(text(f"SELECT count(*), max(xmin::text::bigint) FROM {t}")).one() for t in tables}


async def test_incremental_syncs_follow_a_live_shop(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="lively", seed=3, faults="*:429=0.05,5xx=0.05,reset=0.03;allegro-api:dup=0.2")
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    async with clients_for(app) as clients:
        for _hour in range(4):
            for shop_id in shops.values():
                reports = await sync_one(shop_id, clients=clients)
                assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
            world.advance(3 * 3600)
        for shop_id in shops.values():
            await sync_one(shop_id, clients=clients)
    for name, shop_id in shops.items():
        check = assert_wb_matches if world.marketplace_of(name) == "wb" else assert_allegro_matches
        check(clean_engine, world, name, shop_id)


async def test_a_journal_cursor_older_than_the_retention_is_healed(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="lively", seed=5)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    allegro = {n: i for n, i in shops.items() if world.marketplace_of(n) == "allegro"}
    async with clients_for(app, allegro_event_retention_hours=2) as clients:
        for shop_id in allegro.values():
            await sync_one(shop_id, clients=clients)
        # Six hours pass with the journal keeping only two: events after our cursor expire unread.
        world.event_retention_s = 2 * 3600
        world.advance(6 * 3600)
        for shop_id in allegro.values():
            reports = await sync_one(shop_id, clients=clients)
            assert all(r.status == "success" for r in reports)
    for name, shop_id in allegro.items():
        assert_allegro_matches(clean_engine, world, name, shop_id)


async def test_a_rejected_wb_token_marks_the_shop_broken_and_stops(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    from storage.shops import replace_credentials

    with Session(clean_engine) as s, s.begin():
        replace_credentials(s, shop_id=shops["wb1"], credentials={"token": "not-a-jwt-at-all"})
    reports = await sync_one(shops["wb1"], clients=clients)
    assert len(reports) == 1 and reports[0].status == "failed"  # the other streams were not tried
    assert "CredentialsRejected" in reports[0].error and "not-a-jwt" not in reports[0].error
    with Session(clean_engine) as s:
        shop = s.get(Shop, shops["wb1"])
        assert shop.status == "broken"
    assert len([r for r in world.log.entries() if r.host.startswith("wb-")]) == 1  # 401: no retries
    assert await sync_one(shops["wb1"], clients=clients) == []  # a broken shop is not synced


async def test_ended_offers_are_backed_up_too(clean_engine: Engine) -> None:
    """No publication.status filter means every status (facts page): old orders point at ENDED offers."""
    app = make_sandbox(scenario="lively", seed=1)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    async with clients_for(app) as clients:
        for hours in (3, 6):  # each time an offer has sold out (the sandbox ends an offer at 0)
            world.advance(hours * 3600)
            reports = await sync_one(shops["allegro1"], clients=clients)
            assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
            offers = world.allegro_offers("allegro1")
            assert any(o["publication"]["status"] == "ENDED" for o in offers.values())
            with Session(clean_engine) as s:
                rows = s.execute(select(Product.sku, Product.status).where(Product.shop_id == shops["allegro1"])).all()
            assert dict(rows) == {oid: o["publication"]["status"] for oid, o in offers.items()}
    assert_allegro_matches(clean_engine, world, "allegro1", shops["allegro1"])
