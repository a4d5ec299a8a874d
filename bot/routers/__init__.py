"""One Router per feature; `all_routers()` builds them in the order they are tried.

A feature module declares its handlers once on a `Feature` (the same decorators as an aiogram
Router); `router()` makes a fresh Router of them, because a Router belongs to one Dispatcher
and tests (and a restart in one process) build several.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram import Router


class Feature:
    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = []

    def message(self, *filters: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self._add("message", filters)

    def callback_query(self, *filters: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self._add("callback_query", filters)

    def _add(self, observer: str, filters: tuple[Any, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            self._handlers.append((observer, handler, filters))
            return handler

        return register

    def router(self) -> Router:
        router = Router(name=self.name)
        for observer, handler, filters in self._handlers:
            getattr(router, observer).register(handler, *filters)
        return router


def all_routers() -> list[Router]:
    from bot.routers import connect, data, orders, settings, shops, start, sync

    # start first: /cancel and /help work in any state; settings and connect hold typed input;
    # orders and sync before data, whose shop picker takes the rest.
    features = [start, connect, shops, settings, orders, sync, data]
    return [module.feature.router() for module in features]
