"""Back-off: a shop whose syncs keep failing is left out of scheduled cycles, longer each time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from flows.fanout import due_shops
from flows.sync import sync_one
from sandbox.world import World
from sellerpulse.cli_status import shop_rows
from storage.backoff import backed_off, backoffs, delay_seconds, record_outcome
from tests.flows.conftest import clients_for

BASE, CAP = 180.0, 1000.0


def _db_now(engine: Engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT now()")).scalar_one()


def test_each_failure_in_a_row_waits_longer_up_to_the_cap_and_a_success_ends_it(
    clean_engine: Engine, shops: dict[str, int]
) -> None:
    shop = shops["wb1"]
    waits = []
    for n in range(1, 7):
        before = _db_now(clean_engine)
        with Session(clean_engine) as s, s.begin():
            got = record_outcome(s, shop_id=shop, ok=False, error=f"boom {n}\nsecond line", base=BASE, cap=CAP)
        assert got is not None and got.failures == n and got.last_error == f"boom {n}"
        waits.append(round((got.next_attempt_at - before).total_seconds()))
        assert waits[-1] == delay_seconds(n, base=BASE, cap=CAP)
    assert waits == [0, 180, 540, 1000, 1000, 1000]  # 0, 1, 3 bases, then the cap
    with Session(clean_engine) as s:
        assert backed_off(s) == {shop}
        assert backoffs(s, shop_ids=[shop, shops["allegro1"]]).keys() == {shop}
    with Session(clean_engine) as s, s.begin():
        assert record_outcome(s, shop_id=shop, ok=True, error=None, base=BASE, cap=CAP) is None
    with Session(clean_engine) as s:
        assert backed_off(s) == set() and backoffs(s, shop_ids=[shop]) == {}


async def test_a_shop_whose_syncs_fail_is_left_out_of_the_cycle_until_a_sync_succeeds(
    clean_engine: Engine, sandbox_app, world: World, shops: dict[str, int]
) -> None:
    wb1, allegro1 = shops["wb1"], shops["allegro1"]
    world.set_faults("wb-statistics:5xx=1;wb-analytics:5xx=1;wb-feedbacks:5xx=1;wb-content:5xx=1;wb-marketplace:5xx=1")
    clients = clients_for(sandbox_app, stream_retry_budget_seconds=1.0)
    try:
        first = await sync_one(wb1, clients=clients)
        assert first and all(r.status == "failed" for r in first)
        # The first failure costs nothing: the next cycle tries it again.
        assert due_shops(clean_engine) == {"wb": [wb1], "allegro": [allegro1]}
        await sync_one(wb1, clients=clients)
        assert due_shops(clean_engine) == {"allegro": [allegro1]}  # the second: left out for a while
        assert due_shops(clean_engine, only=[wb1]) == {"wb": [wb1]}  # asked for by hand: it runs
        (row,) = [r for r in shop_rows(clean_engine) if r["id"] == wb1]
        assert row["backoff"]["failures"] == 2 and "503" in row["backoff"]["last_error"]
        assert row["backoff"]["next_attempt_at"] - _db_now(clean_engine) > timedelta(seconds=60)

        # One stream failing while the others work is no reason to sync the orders less often.
        world.set_faults("wb-feedbacks:5xx=1")
        partial = await sync_one(wb1, clients=clients)
        assert {r.stream for r in partial if r.status == "failed"} == {"wb_reviews"}
    finally:
        await clients.aclose()
    assert due_shops(clean_engine) == {"wb": [wb1], "allegro": [allegro1]}
    with Session(clean_engine) as s:
        assert backoffs(s, shop_ids=[wb1]) == {}
