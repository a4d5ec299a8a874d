"""The bot's client of sellerpulse's API: one long-lived httpx client, the key in a header.

Errors (httpx's and the API's) are translated here, at the boundary:

    ApiError                 any answer the API gave on purpose: status, code, message, details
    └── ApiUnavailable       no answer worth reading: network error, timeout, 5xx (try again)

Person-scoped calls take the person's Telegram id first. Nothing here logs a key, a token or
a body: a WB token passes through `connect_wb` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=10.0, pool=10.0)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details

    def field_messages(self) -> list[str]:
        """For invalid_request: each field's complaint (pydantic's words), without the input."""
        if not isinstance(self.details, list):
            return []
        return [str(d.get("msg", "")) for d in self.details if isinstance(d, dict)]


class ApiUnavailable(ApiError):
    pass


class ApiClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = TIMEOUT,
        max_connections: int = 32,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"X-API-Key": api_key, "User-Agent": "sellerpulse-bot"},
            transport=transport,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            # The exception's type only: its text could carry the URL's query (Telegram ids).
            raise ApiUnavailable(0, "unavailable", f"the API did not answer ({type(exc).__name__})") from None
        if response.status_code >= 400:
            error = _error_of(response)
            kind = ApiUnavailable if response.status_code >= 500 else ApiError
            raise kind(response.status_code, error.get("code", "error"), error.get("message", ""), error.get("details"))
        return response

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = await self.request(method, path, **kw)
        return None if response.status_code == 204 else response.json()

    @staticmethod
    def _as(telegram_id: int, **params: Any) -> dict[str, Any]:
        return {"telegram_id": telegram_id, **{k: v for k, v in params.items() if v is not None}}

    # -- people -----------------------------------------------------------------------------

    async def get_person(self, telegram_id: int) -> dict[str, Any] | None:
        try:
            return await self._json("GET", f"/people/{telegram_id}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def put_person(self, telegram_id: int, profile: dict[str, Any]) -> dict[str, Any]:
        return await self._json("PUT", f"/people/{telegram_id}", json=profile)

    # -- shops ------------------------------------------------------------------------------

    async def shops(self, telegram_id: int) -> list[dict[str, Any]]:
        page = await self._json("GET", "/shops", params=self._as(telegram_id, limit=200))
        return page["items"]

    async def shop(self, telegram_id: int, shop_id: int) -> dict[str, Any]:
        return await self._json("GET", f"/shops/{shop_id}", params=self._as(telegram_id))

    async def connect_wb(self, telegram_id: int, name: str, token: str) -> dict[str, Any]:
        body = {"name": name, "token": token}
        return await self._json("POST", "/shops/wb", params=self._as(telegram_id), json=body)

    async def start_allegro_login(self, telegram_id: int, name: str) -> dict[str, Any]:
        return await self._json("POST", "/shops/allegro/login", params=self._as(telegram_id), json={"name": name})

    async def allegro_login(self, telegram_id: int, ticket_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/shops/allegro/login/{ticket_id}", params=self._as(telegram_id))

    async def rename_shop(self, telegram_id: int, shop_id: int, name: str) -> dict[str, Any]:
        return await self._json("PATCH", f"/shops/{shop_id}", params=self._as(telegram_id), json={"name": name})

    async def remove_shop(self, telegram_id: int, shop_id: int, *, purge: bool) -> None:
        params = self._as(telegram_id, purge=str(purge).lower())
        await self._json("DELETE", f"/shops/{shop_id}", params=params)

    async def pause_shop(self, telegram_id: int, shop_id: int, *, paused: bool) -> dict[str, Any]:
        action = "pause" if paused else "resume"
        return await self._json("POST", f"/shops/{shop_id}/{action}", params=self._as(telegram_id))

    async def create_invite(self, telegram_id: int, shop_id: int) -> dict[str, Any]:
        return await self._json("POST", f"/shops/{shop_id}/invites", params=self._as(telegram_id))

    async def accept_invite(self, telegram_id: int, code: str) -> dict[str, Any]:
        return await self._json("POST", "/invites/accept", json={"telegram_id": telegram_id, "code": code})

    async def leave_shop(self, telegram_id: int, shop_id: int) -> None:
        await self._json("DELETE", f"/shops/{shop_id}/members/me", params=self._as(telegram_id))

    # -- data -------------------------------------------------------------------------------

    async def dashboard(self, telegram_id: int, shop_id: int) -> dict[str, Any]:
        return await self._json("GET", f"/shops/{shop_id}/dashboard", params=self._as(telegram_id))

    async def orders(
        self, telegram_id: int, shop_id: int, *, status: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        params = self._as(telegram_id, status=status, limit=limit, offset=offset)
        return await self._json("GET", f"/shops/{shop_id}/orders", params=params)

    async def order(self, telegram_id: int, shop_id: int, order_id: int) -> dict[str, Any]:
        return await self._json("GET", f"/shops/{shop_id}/orders/{order_id}", params=self._as(telegram_id))

    async def critical_stocks(self, telegram_id: int, shop_id: int, *, limit: int = 20) -> dict[str, Any]:
        params = self._as(telegram_id, limit=limit)
        return await self._json("GET", f"/shops/{shop_id}/stocks/critical", params=params)

    async def reviews_summary(self, telegram_id: int, shop_id: int, *, days: int = 7) -> dict[str, Any]:
        params = self._as(telegram_id, days=days)
        return await self._json("GET", f"/shops/{shop_id}/reviews/summary", params=params)

    async def analytics(self, telegram_id: int, shop_id: int, *, days: int) -> dict[str, Any]:
        return await self._json("GET", f"/shops/{shop_id}/analytics", params=self._as(telegram_id, days=days))

    async def analytics_png(self, telegram_id: int, shop_id: int, *, days: int) -> bytes:
        params = self._as(telegram_id, days=days)
        return (await self.request("GET", f"/shops/{shop_id}/analytics.png", params=params)).content

    async def start_sync(self, telegram_id: int, shop_id: int) -> dict[str, Any]:
        return await self._json("POST", f"/shops/{shop_id}/sync", params=self._as(telegram_id))

    async def sync_status(self, telegram_id: int, shop_id: int, run_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/shops/{shop_id}/sync/{run_id}", params=self._as(telegram_id))

    async def sync_runs(self, telegram_id: int, shop_id: int, *, limit: int = 5) -> list[dict[str, Any]]:
        page = await self._json("GET", f"/shops/{shop_id}/sync-runs", params=self._as(telegram_id, limit=limit))
        return page["items"]

    # -- settings ---------------------------------------------------------------------------

    async def settings(self, telegram_id: int) -> dict[str, Any]:
        return await self._json("GET", "/settings", params=self._as(telegram_id))

    async def put_settings(self, telegram_id: int, values: dict[str, Any]) -> dict[str, Any]:
        return await self._json("PUT", "/settings", params=self._as(telegram_id), json=values)

    # -- delivery ---------------------------------------------------------------------------

    async def recipients(self, *, after: int, limit: int = 1000) -> dict[str, Any]:
        return await self._json("GET", "/delivery/recipients", params={"after": after, "limit": limit})

    async def batch_poll(self, telegram_ids: Sequence[int], *, limit: int) -> dict[str, Any]:
        body = {"telegram_ids": list(telegram_ids), "limit": limit}
        return await self._json("POST", "/notifications/poll", json=body)

    async def ack(self, telegram_id: int, cursor: int) -> int:
        body = await self._json("POST", "/notifications/ack", json={"telegram_id": telegram_id, "cursor": cursor})
        return int(body["cursor"])

    async def recorded(self, telegram_id: int, ids: Sequence[int]) -> set[int]:
        body = await self._json("POST", "/delivery/records/lookup", json={"telegram_id": telegram_id, "ids": list(ids)})
        return set(body["recorded"])

    async def record(
        self,
        telegram_id: int,
        *,
        item_id: int,
        ids: Sequence[int],
        status: str,
        message_id: int | None = None,
        detail: str | None = None,
        attempts: int = 1,
    ) -> int:
        body = {
            "telegram_id": telegram_id,
            "item_id": item_id,
            "ids": list(ids),
            "status": status,
            "telegram_message_id": message_id,
            "detail": detail[:500] if detail else None,
            "attempts": attempts,
        }
        return int((await self._json("POST", "/delivery/records", json=body))["recorded"])

    async def set_inactive(self, telegram_id: int, reason: str = "blocked") -> dict[str, Any]:
        return await self._json("POST", f"/delivery/people/{telegram_id}/inactive", json={"reason": reason})

    async def set_active(self, telegram_id: int) -> dict[str, Any]:
        return await self._json("POST", f"/delivery/people/{telegram_id}/active")

    async def paused_shops(self) -> dict[int, str]:
        body = await self._json("GET", "/delivery/paused-shops")
        return {int(s["shop_id"]): str(s["paused_at"]) for s in body["shops"]}


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"code": "error", "message": f"HTTP {response.status_code}"}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {"code": "error", "message": f"HTTP {response.status_code}"}
