"""The sales analytics as a PNG: orders, buyouts and returns per day, revenue on a second axis."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede pyplot

from matplotlib.figure import Figure  # noqa: E402 - after the backend choice

from storage.queries import SalesAnalytics  # noqa: E402


def analytics_png(data: SalesAnalytics, *, title: str, currency: str | None) -> bytes:
    # A Figure, not pyplot: pyplot keeps global state that is not safe across threads.
    fig = Figure(figsize=(9, 4.5), dpi=100)
    ax = fig.add_subplot()
    days = [d.day for d in data.daily]
    ax.bar(days, [d.orders for d in data.daily], color="#8ab4f8", label="orders")
    ax.plot(days, [d.buyouts for d in data.daily], color="#188038", marker=".", label="buyouts")
    ax.plot(days, [d.returns for d in data.daily], color="#d93025", marker=".", label="returns")
    ax.set_ylabel("count")
    ax.legend(loc="upper left")
    revenue = ax.twinx()
    revenue.plot(days, [float(d.revenue) for d in data.daily], color="#5f6368", linestyle="--", label="revenue")
    revenue.set_ylabel(f"revenue ({currency})" if currency else "revenue")
    ax.set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
