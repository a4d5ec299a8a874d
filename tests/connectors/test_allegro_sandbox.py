"""Allegro reads against the in-process sandbox, compared with its ground truth."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors import errors
from sandbox.transport import SandboxTransport
from tests.connectors.sandbox_harness import make_sandbox

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def sb():  # type: ignore[no-untyped-def]
    return make_sandbox(scenario="tiny:allegro_orders=120", rate_limits=False)


async def test_event_journal_to_the_end_then_forms_by_id_match_truth(sb) -> None:  # type: ignore[no-untyped-def]
    token = sb.allegro_pair().access_token
    async with sb.allegro() as api:
        batch = await api.order_events(token, None)
        stats = await api.event_stats(token)
        again = await api.order_events(token, batch.last_event_id)
        forms = await api.checkout_forms(
            token, [e.checkout_form_id for e in batch.events] + ["00000000-0000-4000-8000-000000000000"]
        )
    assert batch.events and batch.errors == []
    assert batch.last_event_id == batch.events[-1].id == stats.latest_event_id
    assert again.events == [] and again.last_event_id == batch.last_event_id  # caught up: cursor kept
    assert len({e.id for e in batch.events}) == len(batch.events)
    truth = sb.world.allegro_checkout_forms("allegro1")
    assert {f.id for f in forms.forms} == set(truth)
    assert forms.missing == ["00000000-0000-4000-8000-000000000000"]
    assert all(f.raw == truth[f.id] for f in forms.forms)


async def test_journal_pages_of_a_given_limit_carry_their_cursor(sb) -> None:  # type: ignore[no-untyped-def]
    token = sb.allegro_pair().access_token
    async with sb.allegro() as api:
        pages = [p async for p in api.iter_order_event_pages(token, None, limit=10)]
    assert len(pages) > 2
    assert all(p.cursor == p.items[-1].id for p in pages if p.items)


async def test_listing_by_updated_at_and_offers_and_returns(sb) -> None:  # type: ignore[no-untyped-def]
    token = sb.allegro_pair().access_token
    now = sb.world.now_dt()
    async with sb.allegro() as api:
        listed = await api.list_checkout_forms(token, EPOCH, now, by="updatedAt")
        offers = [o async for p in api.iter_offer_pages(token, publication_status=None, limit=3) for o in p.items]
        returns = [r async for p in api.iter_customer_return_pages(token) for r in p.items]
        offer_events = [e async for p in api.iter_offer_event_pages(token, None) for e in p.items]
    assert {f.id for f in listed.forms} == set(sb.world.allegro_checkout_forms("allegro1"))
    assert {o.id for o in offers} == set(sb.world.allegro_offers("allegro1"))
    assert {r.id for r in returns} == set(sb.world.allegro_customer_returns("allegro1"))
    assert all(e.offer_id for e in offer_events)


async def test_expired_access_token_is_credentials_rejected(sb) -> None:  # type: ignore[no-untyped-def]
    token = sb.allegro_pair().access_token
    sb.world.advance(13 * 3600)
    async with sb.allegro() as api:
        with pytest.raises(errors.CredentialsRejected) as info:
            await api.event_stats(token)
    assert token not in str(info.value)


async def test_window_of_30000_orders_is_split_under_the_cap_and_read_exactly_once() -> None:
    faults = "allegro-api:5xx=0.02,429=0.02,truncate=0.02,reset=0.02"
    sb = make_sandbox(scenario="tiny:allegro_orders=30000", rate_limits=False, faults=faults)
    token = sb.allegro_pair().access_token
    seen: dict[str, int] = {}
    async with sb.allegro(concurrency=8) as api:
        async for page in api.iter_checkout_form_pages(token, EPOCH, sb.world.now_dt()):
            assert page.errors == []
            for form in page.items:
                seen[form.id] = seen.get(form.id, 0) + 1
    truth = sb.world.allegro_checkout_forms("allegro1")
    assert len(truth) == 30_000
    assert set(seen) == set(truth) and set(seen.values()) == {1}
    listing = [r for r in sb.requests("allegro-api") if r.path == "/order/checkout-forms"]
    assert not any(r.status in (400, 422) for r in listing)  # never past offset+limit 10000
    assert {r.fault for r in listing} >= {"5xx", "429", "truncate", "reset"}  # and faults were survived
    windows = {q for r in listing for q in r.query.split("&") if q.startswith("lineItems.boughtAt.gte=")}
    assert len(windows) >= 4  # 30,000 orders need at least 4 windows of <= 10,000


async def test_duplicate_events_are_delivered_once_and_the_cursor_still_ends_at_the_last() -> None:
    sb = make_sandbox(scenario="tiny:allegro_orders=120", rate_limits=False, faults="allegro-api:dup=0.7")
    token = sb.allegro_pair().access_token
    async with sb.allegro() as api:
        batch = await api.order_events(token, None)
        stats = await api.event_stats(token)
    ids = [e.id for e in batch.events]
    assert any(r.fault == "dup" for r in sb.requests("allegro-api", "/order/events"))
    assert len(ids) == len(set(ids)) and ids == sorted(ids, key=int)
    assert batch.last_event_id == stats.latest_event_id


async def test_token_revoked_mid_run_is_credentials_rejected_not_transient() -> None:
    sb = make_sandbox(scenario="tiny:allegro_orders=120", rate_limits=False)
    token = sb.allegro_pair().access_token
    async with sb.allegro() as api:
        pages = api.iter_order_event_pages(token, None, limit=10)
        first = await anext(pages)
        sb.world.revoke_allegro("allegro1")
        with pytest.raises(errors.CredentialsRejected):
            await anext(pages)
    assert first.items


class ClockTransport(SandboxTransport):
    """Pass-through that lets sandbox time pass with every listing request (a live shop)."""

    def __init__(self, world, seconds: float, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kw)
        self.world, self.seconds = world, seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/order/checkout-forms"):
            self.world.advance(self.seconds)
        return await super().handle_async_request(request)


async def test_updated_at_window_on_a_live_shop_misses_no_order_that_stayed_in_it() -> None:
    sb = make_sandbox(scenario="lively", rate_limits=False)
    sb.transport = ClockTransport(sb.world, 900.0, app=sb.app)
    token = sb.allegro_pair().access_token
    until = sb.world.now_dt()
    seen: list[str] = []
    async with sb.allegro(concurrency=2) as api:
        async for page in api.iter_checkout_form_pages(token, EPOCH, until, by="updatedAt"):
            seen += [f.id for f in page.items]
    stayed = {
        fid
        for fid, form in sb.world.allegro_checkout_forms("allegro1").items()
        if datetime.fromisoformat(form["updatedAt"]) <= until
    }
    assert len(seen) == len(set(seen))
    assert stayed <= set(seen)


class InFlightTransport(SandboxTransport):
    """Pass-through that records the most requests ever in flight at once."""

    def __init__(self, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kw)
        self.now = self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(0.002)  # a little latency, as over a network
            return await super().handle_async_request(request)
        finally:
            self.now -= 1


async def test_many_checkout_forms_at_once_with_bounded_concurrency(sb) -> None:  # type: ignore[no-untyped-def]
    sb.transport = InFlightTransport(app=sb.app)
    ids = list(sb.world.allegro_checkout_forms("allegro1"))
    async with sb.allegro(concurrency=3) as api:
        batch = await api.checkout_forms(sb.allegro_pair().access_token, ids)
    assert {f.id for f in batch.forms} == set(ids) and batch.missing == []
    assert sb.transport.peak == 3


class SandboxTokens:
    """A token source as the sync has one: renews by refreshing the shop's pair at the sandbox."""

    def __init__(self, sb, auth) -> None:  # type: ignore[no-untyped-def]
        pair = sb.allegro_pair()
        self.access, self.refresh, self.auth = pair.access_token, pair.refresh_token, auth
        self.renewals = 0
        self._lock = asyncio.Lock()

    async def current(self) -> str:
        return self.access

    async def renew(self, rejected: str) -> str:
        async with self._lock:  # requests in flight when the token died share one refresh
            if rejected == self.access:
                pair = await self.auth.refresh(self.refresh)
                self.access = pair.access_token.get_secret_value()
                self.refresh = pair.refresh_token.get_secret_value()
                self.renewals += 1
            return self.access


async def test_a_dying_token_is_renewed_and_the_same_request_sent_again() -> None:
    sb = make_sandbox(scenario="tiny:allegro_orders=900", rate_limits=False, allegro_token_requests=4)
    async with sb.allegro(concurrency=4) as api, sb.auth() as auth:
        tokens = SandboxTokens(sb, auth)
        seen = [f.id async for p in api.iter_checkout_form_pages(tokens, EPOCH, sb.world.now_dt()) for f in p.items]
        forms = await api.checkout_forms(tokens, seen[:30])
    assert sorted(seen) == sorted(sb.world.allegro_checkout_forms("allegro1"))
    assert len(forms.forms) == 30 and forms.missing == []
    answered = [r for r in sb.requests("allegro-api") if r.status == 200]
    assert tokens.renewals == -(-len(answered) // 4) - 1  # one refresh per dead token, in flight or not
    assert sum(1 for r in sb.requests("allegro-api") if r.status == 401) >= tokens.renewals


async def test_renewed_tokens_refused_again_and_again_end_the_call_bounded() -> None:
    sb = make_sandbox(scenario="tiny:allegro_orders=20", rate_limits=False)

    class Dead:
        renewals = 0

        async def current(self) -> str:
            return "dead"

        async def renew(self, rejected: str) -> str:
            self.renewals += 1
            return f"dead-{self.renewals}"

    source = Dead()
    async with sb.allegro() as api:
        with pytest.raises(errors.AccessTokenRejected) as info:
            await api.event_stats(source)
        with pytest.raises(errors.CredentialsRejected):  # a plain token has nobody to renew it
            await api.event_stats("dead")
    assert source.renewals == 3 and "dead" not in str(info.value)
    assert not isinstance(info.value, errors.CredentialsRejected)  # not "the login is gone"


async def test_listing_windows_of_a_given_width_say_when_each_is_done() -> None:
    sb = make_sandbox(scenario="tiny:allegro_orders=600,history_days=30", rate_limits=False)
    token = sb.allegro_pair().access_token
    now = sb.world.now_dt()
    since = now - timedelta(days=31)
    cursors, ids = [], []
    async with sb.allegro() as api:
        async for page in api.iter_checkout_form_pages(token, since, now, window=timedelta(days=7)):
            cursors.append(page.cursor)
            ids += [f.id for f in page.items]
    assert sorted(ids) == sorted(sb.world.allegro_checkout_forms("allegro1"))
    assert cursors == sorted(cursors) and cursors[-1] == now  # resume points only move forward
    done = [since + timedelta(days=7 * n) for n in range(1, 5)] + [now]
    assert [c for c in dict.fromkeys(cursors) if c != since] == done  # each window's end, once read
