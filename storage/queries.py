"""Read-only queries behind the API's data endpoints, one shop at a time.

Callers pass a shop the person was already checked to belong to (storage.people.member_shop);
nothing here widens that scope. Day boundaries are in the person's time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, column, func, select, table, text
from sqlalchemy.orm import Session

from storage import order_list
from storage.models import (
    CustomerReturn,
    Order,
    OrderLine,
    Product,
    Review,
    Sale,
    Stock,
    SyncRun,
    WbFeedOrder,
)

ZERO = Decimal("0")
# Each order with its status as of now (migration 0016_order_statuses): a WB order's buyout and
# return come from the sales report and its cancellation from the order feed too, days before
# statistics list them; `orders` alone does not know. Every figure reads this view (the order list
# and detail read ORDER_LIST, which adds the units only the feed shows yet).
ORDER_STATUSES = table("order_statuses", *(column(c.name) for c in Order.__table__.columns))
_O = ORDER_STATUSES.c
# A form merged into a newer one is counted there (its purchases live on under the new form).
COUNTED = and_(_O.is_cancelled.is_(False), _O.merged_into.is_(None))
# What the order list and detail show (migration 0019): ORDER_STATUSES with `in_statistics` true,
# and the WB units only the order feed shows yet (false). Figures never read it: statistics
# are the record of money, and a unit is counted once statistics list it.
ORDER_LIST = table("order_list", *(column(c.name) for c in Order.__table__.columns), column("in_statistics"))
_L = ORDER_LIST.c


def zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return ZoneInfo("UTC")


def local_midnight(now: datetime, tz: tzinfo) -> datetime:
    local = now.astimezone(tz)
    return datetime.combine(local.date(), datetime.min.time(), tzinfo=tz)


# -- dashboard ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodFigures:
    name: str
    start: datetime
    end: datetime
    orders: int
    amount: Decimal
    previous_orders: int
    previous_amount: Decimal

    @property
    def growth(self) -> float | None:
        """Order-count growth against the previous period of the same length, as a fraction."""
        if self.previous_orders == 0:
            return None
        return round((self.orders - self.previous_orders) / self.previous_orders, 4)


def _periods(now: datetime, tz: tzinfo) -> list[tuple[str, datetime, datetime]]:
    today = local_midnight(now, tz)
    return [
        ("today", today, now),
        ("yesterday", today - timedelta(days=1), today),
        ("7d", today - timedelta(days=6), now),
        ("30d", today - timedelta(days=29), now),
    ]


@dataclass(frozen=True)
class PeriodWindows:
    """The dashboard's periods for one moment and zone: each (name, start, end) and the two
    [lo, hi) ranges it counts (the period, then the previous one of the same length)."""

    periods: list[tuple[str, datetime, datetime]]
    ranges: list[tuple[datetime, datetime]]  # two per period, in order
    earliest: datetime  # no range starts before it (the orders read)


def period_windows(now: datetime, tz: tzinfo) -> PeriodWindows:
    periods, ranges = [], []
    for name, start, end in _periods(now, tz):
        length = end - start if name != "today" else timedelta(days=1)
        prev_start, prev_end = start - length, start if name != "today" else now - timedelta(days=1)
        periods.append((name, start, end))
        ranges += [(start, end), (prev_start, prev_end)]
    return PeriodWindows(periods, ranges, min(p[1] for p in periods) - timedelta(days=30))


def periods_of(windows: PeriodWindows, figures: Sequence[Any]) -> list[PeriodFigures]:
    """`figures`: an order count and amount per range of `windows`, in order."""
    out = []
    for i, (name, start, end) in enumerate(windows.periods):
        n, amount, pn, pamount = figures[4 * i : 4 * i + 4]
        out.append(PeriodFigures(name, start, end, n, amount, pn, pamount))
    return out


def order_periods(session: Session, *, shop_id: int, now: datetime, tz: tzinfo) -> list[PeriodFigures]:
    """Orders and amounts for today, yesterday, 7 and 30 days, each with its previous period; one query."""
    windows = period_windows(now, tz)
    columns: list[Any] = []
    for lo, hi in windows.ranges:
        inside = and_(_O.bought_at >= lo, _O.bought_at < hi, COUNTED)
        columns += [func.count().filter(inside), func.coalesce(func.sum(_O.total_amount).filter(inside), ZERO)]
    row = session.execute(select(*columns).where(_O.shop_id == shop_id, _O.bought_at >= windows.earliest)).one()
    return periods_of(windows, row)


def last_syncs(session: Session, *, shop_id: int) -> list[SyncRun]:
    """The latest run of each stream."""
    query = (
        select(SyncRun)
        .where(SyncRun.shop_id == shop_id)
        .order_by(SyncRun.stream, SyncRun.started_at.desc(), SyncRun.id.desc())
        .distinct(SyncRun.stream)
    )
    return list(session.scalars(query))


# -- orders ---------------------------------------------------------------------------------


def recent_orders(
    session: Session, *, shop_id: int, status: str | None, limit: int, offset: int
) -> tuple[list[Any], int]:
    """A page of the shop's order list (storage.order_list: feed-only WB units included),
    newest first, each row with order_list.ORDER_COLUMNS; and the list's total. One statement."""
    sql = order_list.page_sql(
        shop=":shop", status=None if status is None else ":status", limit=":limit", offset=":offset"
    )
    params = {"shop": shop_id, "status": status, "limit": limit, "offset": offset}
    rows = session.execute(text(sql), params).all()
    return [r for r in rows if r.id is not None], int(rows[0].total)


def merged_parts(session: Session, *, shop_id: int, external_id: str) -> list[str]:
    """The ids of the forms merged into this one (storage.allegro_merges)."""
    query = select(Order.external_id).where(Order.shop_id == shop_id, Order.merged_into == external_id)
    return sorted(session.scalars(query))


@dataclass(frozen=True)
class FeedLine:
    """The one unit a feed-only WB order is (order_lines hold statistics' lines only)."""

    sku: str | None
    name: str | None
    size: str | None
    quantity: int
    price: Decimal | None
    currency: str | None


def order_with_lines(session: Session, *, shop_id: int, order_id: int) -> tuple[Any, list[Any]] | None:
    """The order (a row of ORDER_LIST) and its lines. A feed-only unit's id, once statistics list
    the unit, opens its stored order: the id the seller was shown keeps working."""
    order = session.execute(select(ORDER_LIST).where(_L.id == order_id, _L.shop_id == shop_id)).first()
    if order is None:
        srid = select(WbFeedOrder.srid).where(WbFeedOrder.id == order_id, WbFeedOrder.shop_id == shop_id)
        order = session.execute(
            select(ORDER_LIST).where(_L.shop_id == shop_id, _L.external_id == srid.scalar_subquery())
        ).first()
    if order is None:
        return None
    if not order.in_statistics:
        return order, [_feed_line(session, shop_id, order.id)]
    lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id))
    return order, list(lines)


def _feed_line(session: Session, shop_id: int, feed_id: int) -> FeedLine:
    row = session.execute(
        select(WbFeedOrder.sku, WbFeedOrder.price, WbFeedOrder.currency, Product.name)
        .outerjoin(Product, and_(Product.shop_id == shop_id, Product.sku == WbFeedOrder.sku))
        .where(WbFeedOrder.id == feed_id)
    ).one()
    return FeedLine(sku=row.sku, name=row.name, size=None, quantity=1, price=row.price, currency=row.currency)


# -- stocks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriticalStock:
    sku: str
    name: str | None
    image_url: str | None
    total: int
    warehouses: dict[str, int] = field(default_factory=dict)


def _stock_totals(shop_id: int, threshold: int) -> Any:
    return (
        select(Stock.sku, func.sum(Stock.quantity).label("total"))
        .where(Stock.shop_id == shop_id)
        .group_by(Stock.sku)
        .having(func.sum(Stock.quantity) <= threshold)
        .subquery()
    )


def count_critical_stocks(session: Session, *, shop_id: int, threshold: int) -> int:
    totals = _stock_totals(shop_id, threshold)
    return session.scalar(select(func.count()).select_from(totals)) or 0


def critical_stocks(
    session: Session, *, shop_id: int, threshold: int, limit: int, offset: int
) -> tuple[list[CriticalStock], int]:
    """Products whose stock across all warehouses is at or below `threshold`, lowest first."""
    totals = _stock_totals(shop_id, threshold)
    total = session.scalar(select(func.count()).select_from(totals)) or 0
    rows = session.execute(
        select(totals.c.sku, totals.c.total, Product.name, Product.image_url)
        .outerjoin(Product, and_(Product.shop_id == shop_id, Product.sku == totals.c.sku))
        .order_by(totals.c.total, totals.c.sku)
        .limit(limit)
        .offset(offset)
    ).all()
    skus = [r.sku for r in rows]
    per_warehouse: dict[str, dict[str, int]] = {s: {} for s in skus}
    if skus:
        for sku, warehouse, qty in session.execute(
            select(Stock.sku, Stock.warehouse, func.sum(Stock.quantity))
            .where(Stock.shop_id == shop_id, Stock.sku.in_(skus))
            .group_by(Stock.sku, Stock.warehouse)
        ):
            per_warehouse[sku][warehouse] = int(qty)
    items = [CriticalStock(r.sku, r.name, r.image_url, int(r.total), per_warehouse[r.sku]) for r in rows]
    return items, total


# -- reviews --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewsSummary:
    since: datetime
    new: int
    unanswered: int
    negative: int
    average_stars: float | None
    average_stars_all_time: float | None
    total: int


def reviews_summary(session: Session, *, shop_id: int, since: datetime, negative_at_or_below: int) -> ReviewsSummary:
    recent = Review.created_at_source >= since
    row = session.execute(
        select(
            func.count().filter(recent),
            func.count().filter(Review.is_answered.is_(False)),
            func.count().filter(recent, Review.stars <= negative_at_or_below),
            func.avg(Review.stars).filter(recent),
            func.avg(Review.stars),
            func.count(),
        ).where(Review.shop_id == shop_id)
    ).one()
    return reviews_of(since, row)


def reviews_of(since: datetime, row: Sequence[Any]) -> ReviewsSummary:
    """From new, unanswered, negative, average (new), average (all time), total."""

    def _avg(value: Any) -> float | None:
        return None if value is None else round(float(value), 2)

    return ReviewsSummary(since, row[0], row[1], row[2], _avg(row[3]), _avg(row[4]), row[5])


# -- sales analytics ------------------------------------------------------------------------


@dataclass(frozen=True)
class DayFigures:
    day: date
    orders: int
    buyouts: int
    returns: int
    revenue: Decimal


@dataclass(frozen=True)
class TopProduct:
    sku: str
    name: str | None
    quantity: int
    amount: Decimal


@dataclass(frozen=True)
class SalesAnalytics:
    days: int
    since: datetime
    until: datetime
    orders: int
    cancelled: int
    buyouts: int
    returns: int
    revenue: Decimal
    top_products: list[TopProduct]
    daily: list[DayFigures]


def _local_day(column: Any, tz: tzinfo) -> Any:
    return func.date(func.timezone(str(tz), column))


def _daily_orders(session: Session, shop_id: int, since: datetime, tz: tzinfo) -> dict[date, tuple[int, Decimal]]:
    day = _local_day(_O.bought_at, tz)
    rows = session.execute(
        select(day, func.count(), func.coalesce(func.sum(_O.total_amount), ZERO))
        .where(_O.shop_id == shop_id, _O.bought_at >= since, COUNTED)
        .group_by(day)
    )
    return {d: (n, amount) for d, n, amount in rows}


def _daily_sales(session: Session, shop_id: int, since: datetime, tz: tzinfo) -> dict[date, tuple[int, int, Decimal]]:
    """WB buyouts and returns per day; returns carry negative amounts, so the sum is net revenue."""
    day = _local_day(Sale.sold_at, tz)
    rows = session.execute(
        select(
            day,
            func.count().filter(Sale.kind == "buyout"),
            func.count().filter(Sale.kind == "return"),
            func.coalesce(func.sum(Sale.amount), ZERO),
        )
        .where(Sale.shop_id == shop_id, Sale.sold_at >= since)
        .group_by(day)
    )
    return {d: (b, r, amount) for d, b, r, amount in rows}


def _daily_allegro_returns(session: Session, shop_id: int, since: datetime, tz: tzinfo) -> dict[date, int]:
    day = _local_day(CustomerReturn.created_at_source, tz)
    rows = session.execute(
        select(day, func.count())
        .where(CustomerReturn.shop_id == shop_id, CustomerReturn.created_at_source >= since)
        .group_by(day)
    )
    return {d: n for d, n in rows}


def top_products(session: Session, *, shop_id: int, since: datetime, limit: int = 10) -> list[TopProduct]:
    amount = func.coalesce(func.sum(OrderLine.price * OrderLine.quantity), ZERO)
    rows = session.execute(
        select(
            OrderLine.sku, func.max(func.coalesce(Product.name, OrderLine.name)), func.sum(OrderLine.quantity), amount
        )
        .join(ORDER_STATUSES, _O.id == OrderLine.order_id)
        .outerjoin(Product, and_(Product.shop_id == shop_id, Product.sku == OrderLine.sku))
        .where(OrderLine.shop_id == shop_id, _O.bought_at >= since, COUNTED, OrderLine.sku.is_not(None))
        .group_by(OrderLine.sku)
        .order_by(func.sum(OrderLine.quantity).desc(), amount.desc(), OrderLine.sku)
        .limit(limit)
    )
    return [TopProduct(sku, name, int(qty), value) for sku, name, qty, value in rows]


def sales_analytics(
    session: Session, *, shop_id: int, marketplace: str, days: int, now: datetime, tz: tzinfo
) -> SalesAnalytics:
    """Orders, buyouts, returns and revenue over the last `days` local days, with a daily series.

    Revenue: WB counts what was bought out net of returns (the sales report); Allegro has no
    buyout step, so its revenue is the total of orders not cancelled.
    """
    since = local_midnight(now, tz) - timedelta(days=days - 1)
    orders = _daily_orders(session, shop_id, since, tz)
    cancelled = (
        session.scalar(
            select(func.count()).where(_O.shop_id == shop_id, _O.bought_at >= since, _O.is_cancelled.is_(True))
        )
        or 0
    )
    wb = marketplace == "wb"
    sales = _daily_sales(session, shop_id, since, tz) if wb else {}
    returns = {} if wb else _daily_allegro_returns(session, shop_id, since, tz)
    daily = []
    first = since.astimezone(tz).date()
    for i in range(days):
        d = first + timedelta(days=i)
        n, amount = orders.get(d, (0, ZERO))
        if wb:
            b, r, revenue = sales.get(d, (0, 0, ZERO))
        else:
            b, r, revenue = n, returns.get(d, 0), amount
        daily.append(DayFigures(d, n, b, r, revenue))
    return SalesAnalytics(
        days=days,
        since=since,
        until=now,
        orders=sum(d.orders for d in daily),
        cancelled=cancelled,
        buyouts=sum(d.buyouts for d in daily),
        returns=sum(d.returns for d in daily),
        revenue=sum((d.revenue for d in daily), ZERO),
        top_products=top_products(session, shop_id=shop_id, since=since),
        daily=daily,
    )


# -- sync history ---------------------------------------------------------------------------


def sync_history(
    session: Session, *, shop_id: int, stream: str | None, limit: int, offset: int
) -> tuple[list[SyncRun], int]:
    where = [SyncRun.shop_id == shop_id]
    if stream is not None:
        where.append(SyncRun.stream == stream)
    total = session.scalar(select(func.count()).select_from(SyncRun).where(*where)) or 0
    rows = session.scalars(
        select(SyncRun).where(*where).order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total


def sync_run(session: Session, *, shop_id: int, run_id: int) -> SyncRun | None:
    return session.scalars(select(SyncRun).where(SyncRun.id == run_id, SyncRun.shop_id == shop_id)).first()


def sync_runs_of_flow(session: Session, *, shop_id: int, flow_run_id: str) -> list[SyncRun]:
    return list(
        session.scalars(
            select(SyncRun)
            .where(SyncRun.shop_id == shop_id, SyncRun.flow_run_id == flow_run_id)
            .order_by(SyncRun.stream, SyncRun.id)
        )
    )
