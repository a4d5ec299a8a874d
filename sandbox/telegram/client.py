"""A small client of the stand-in's operator API (the CLI and tests use it)."""

from __future__ import annotations

import time
from typing import Any

import httpx


class StandInError(Exception):
    pass


class TelegramOperator:
    def __init__(self, url: str, *, transport: httpx.BaseTransport | None = None, timeout: float = 10.0) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), transport=transport, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            response = self.http.request(method, "/_telegram" + path, **kw)
        except httpx.HTTPError as exc:
            raise StandInError(f"the Telegram stand-in is not reachable at {self.http.base_url}: {exc}") from None
        body = response.json()
        if response.status_code >= 400:
            raise StandInError(body.get("error", f"HTTP {response.status_code}"))
        return body

    def say(self, user_id: int, text: str, **profile: Any) -> dict[str, Any]:
        return self._call("POST", f"/users/{user_id}/messages", json={"text": text, **profile})

    def press(self, user_id: int, button: str | None = None, *, data: str | None = None, message_id: int | None = None):
        body = {k: v for k, v in {"button": button, "data": data, "message_id": message_id}.items() if v is not None}
        return self._call("POST", f"/users/{user_id}/press", json=body)

    def state(self, user_id: int, state: str) -> dict[str, Any]:
        return self._call("POST", f"/users/{user_id}/state", json={"state": state})

    def add_users(self, users: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call("POST", "/users", json={"users": users})

    def chat(self, chat_id: int, *, after: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", f"/chats/{chat_id}", params={"after": after})["messages"]

    def chats(self) -> dict[int, list[dict[str, Any]]]:
        return {int(k): v for k, v in self._call("GET", "/chats").items()}

    def storm(self, **spec: Any) -> None:
        self._call("POST", "/storm", json=spec)

    def calm(self) -> None:
        self._call("POST", "/calm")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def replies(self, chat_id: int, after: int, *, quiet: float = 1.5, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The bot's messages in a chat after `after` (a seq), once it has been quiet for `quiet`
        seconds (or `timeout` passed): what a person would see after sending something."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            now = [m for m in self.chat(chat_id, after=after) if m["from"] == "bot"]
            if len(now) != len(seen):
                seen, last_change = now, time.monotonic()
            elif seen and time.monotonic() - last_change >= quiet:
                break
            time.sleep(0.1)
        return seen


def show(message: dict[str, Any]) -> str:
    """A transcript entry as a person would read it."""
    if message["kind"] == "answer":
        return f"  (toast) {message['text']}" if message["text"] else ""
    head = "[photo] " if message["kind"] == "photo" else ""
    text = f"{head}{message['text'] or ''}"
    if message["deleted"]:
        text += "  (deleted)"
    buttons = [b["text"] for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
    if buttons:
        text += "\n  buttons: " + " | ".join(f"[{b}]" for b in buttons)
    return text
