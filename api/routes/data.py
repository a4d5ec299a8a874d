"""A shop's backed-up data: dashboard, orders, stocks, reviews, sales analytics, sync history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.orm import Session

from api.chart import analytics_png
from api.deps import MemberShopDep, PersonDep, SessionDep
from api.errors import not_found
from api.routes import AUTHED, errors
from api.schemas import (
    MAX_ID,
    AnalyticsOut,
    CriticalStockOut,
    CriticalStockPage,
    DashboardOut,
    DayOut,
    OrderDetailOut,
    OrderLineOut,
    OrderOut,
    Page,
    Period,
    PeriodOut,
    ReviewsSummaryOut,
    Stream,
    SyncRunOut,
    TopProductOut,
)
from sellerpulse.settings import get_settings
from storage import queries, settings_repo
from storage.reaping import reap_dead_runs

router = APIRouter(prefix="/shops/{shop_id:int}", tags=["data"])

Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Days = Annotated[Period, Query(description="the period, in days")]
OrderStatus = Literal["new", "paid", "processing", "sent", "delivered", "cancelled", "returned"]


def reap_before_showing(session: Session, shop_id: int) -> None:
    """A run left `running` by a process that died shows (and counts) as the failure it is."""
    failing_after = timedelta(seconds=get_settings().sync_failing_after_seconds)
    reap_dead_runs(session, failing_after=failing_after, shop_id=shop_id)


def _reviews(summary: queries.ReviewsSummary) -> ReviewsSummaryOut:
    return ReviewsSummaryOut(**summary.__dict__)


@router.get("/dashboard", response_model=DashboardOut, responses=errors(*AUTHED))
def dashboard(session: SessionDep, person: PersonDep, found: MemberShopDep) -> DashboardOut:
    shop, tz, now = found.shop, queries.zone(person.time_zone), datetime.now(UTC)
    prefs = settings_repo.get_settings(session, person_id=person.id)
    periods = queries.order_periods(session, shop_id=shop.id, now=now, tz=tz)
    return DashboardOut(
        shop_id=shop.id,
        currency=shop.currency,
        time_zone=str(tz),
        periods=[PeriodOut(**p.__dict__, growth=p.growth) for p in periods],
        critical_stocks=queries.count_critical_stocks(
            session, shop_id=shop.id, threshold=prefs.critical_stock_threshold
        ),
        reviews=_reviews(
            queries.reviews_summary(
                session,
                shop_id=shop.id,
                since=now - timedelta(days=1),
                negative_at_or_below=prefs.review_rating_threshold,
            )
        ),
        last_syncs=[SyncRunOut.model_validate(r) for r in _last_syncs(session, shop.id)],
    )


def _last_syncs(session: Session, shop_id: int) -> list[Any]:
    reap_before_showing(session, shop_id)
    return queries.last_syncs(session, shop_id=shop_id)


@router.get("/orders", response_model=Page[OrderOut], responses=errors(*AUTHED))
def orders(
    session: SessionDep, found: MemberShopDep, status: OrderStatus | None = None, limit: Limit = 50, offset: Offset = 0
) -> Page[OrderOut]:
    rows, total = queries.recent_orders(session, shop_id=found.shop.id, status=status, limit=limit, offset=offset)
    return Page[OrderOut](items=[OrderOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/orders/{order_id:int}", response_model=OrderDetailOut, responses=errors(*AUTHED))
def order(session: SessionDep, found: MemberShopDep, order_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> OrderDetailOut:
    result = queries.order_with_lines(session, shop_id=found.shop.id, order_id=order_id)
    if result is None:
        raise not_found("order")
    row, lines = result
    base = OrderOut.model_validate(row).model_dump()
    return OrderDetailOut(
        **base,
        revision=row.revision,
        source_updated_at=row.source_updated_at,
        first_seen_at=row.first_seen_at,
        lines=[OrderLineOut.model_validate(line) for line in lines],
        raw=row.raw,
        merged_from=queries.merged_parts(session, shop_id=found.shop.id, external_id=row.external_id),
    )


@router.get("/stocks/critical", response_model=CriticalStockPage, responses=errors(*AUTHED))
def critical_stocks(
    session: SessionDep,
    person: PersonDep,
    found: MemberShopDep,
    threshold: Annotated[int | None, Query(ge=0, le=100_000, description="default: the person's setting")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CriticalStockPage:
    if threshold is None:
        threshold = settings_repo.get_settings(session, person_id=person.id).critical_stock_threshold
    rows, total = queries.critical_stocks(
        session, shop_id=found.shop.id, threshold=threshold, limit=limit, offset=offset
    )
    items = [CriticalStockOut(**r.__dict__) for r in rows]
    return CriticalStockPage(items=items, total=total, limit=limit, offset=offset, threshold=threshold)


@router.get("/reviews/summary", response_model=ReviewsSummaryOut, responses=errors(*AUTHED))
def reviews_summary(
    session: SessionDep,
    person: PersonDep,
    found: MemberShopDep,
    days: Annotated[int, Query(ge=1, le=365, description="what counts as new")] = 7,
) -> ReviewsSummaryOut:
    prefs = settings_repo.get_settings(session, person_id=person.id)
    since = datetime.now(UTC) - timedelta(days=days)
    summary = queries.reviews_summary(
        session, shop_id=found.shop.id, since=since, negative_at_or_below=prefs.review_rating_threshold
    )
    return _reviews(summary)


def _analytics(session: SessionDep, person: PersonDep, found: MemberShopDep, days: int) -> queries.SalesAnalytics:
    return queries.sales_analytics(
        session,
        shop_id=found.shop.id,
        marketplace=found.shop.marketplace,
        days=days,
        now=datetime.now(UTC),
        tz=queries.zone(person.time_zone),
    )


@router.get("/analytics", response_model=AnalyticsOut, responses=errors(*AUTHED))
def analytics(session: SessionDep, person: PersonDep, found: MemberShopDep, days: Days = Period.month) -> AnalyticsOut:
    data = _analytics(session, person, found, days)
    return AnalyticsOut(
        shop_id=found.shop.id,
        currency=found.shop.currency,
        days=days,
        since=data.since,
        until=data.until,
        orders=data.orders,
        cancelled=data.cancelled,
        buyouts=data.buyouts,
        returns=data.returns,
        revenue=data.revenue,
        top_products=[TopProductOut(**t.__dict__) for t in data.top_products],
        daily=[DayOut(**d.__dict__) for d in data.daily],
    )


@router.get(
    "/analytics.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the chart"}, **errors(*AUTHED)},
)
def analytics_chart(
    session: SessionDep, person: PersonDep, found: MemberShopDep, days: Days = Period.month
) -> Response:
    data = _analytics(session, person, found, days)
    png = analytics_png(data, title=f"{found.shop.name}: last {int(days)} days", currency=found.shop.currency)
    return Response(png, media_type="image/png")


@router.get("/sync-runs", response_model=Page[SyncRunOut], responses=errors(*AUTHED))
def sync_history(
    session: SessionDep, found: MemberShopDep, stream: Stream | None = None, limit: Limit = 50, offset: Offset = 0
) -> Page[SyncRunOut]:
    reap_before_showing(session, found.shop.id)
    rows, total = queries.sync_history(session, shop_id=found.shop.id, stream=stream, limit=limit, offset=offset)
    return Page[SyncRunOut](items=[SyncRunOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)
