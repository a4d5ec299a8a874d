"""One Router per feature; `all_routers()` in the order they are tried."""

from __future__ import annotations

from aiogram import Router


def all_routers() -> list[Router]:
    from bot.routers import connect, data, orders, settings, shops, start, sync

    # start first: /cancel and /help work in any state; settings and connect hold typed input.
    return [start.router, connect.router, shops.router, settings.router, orders.router, sync.router, data.router]
