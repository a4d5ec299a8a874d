"""The request log: what each client asked and got, so tests can prove that
limits were respected. Never stores a secret: tokens appear as a token id
(WB JWT `id` claim / Allegro token `jti`), query values of secret-looking
keys are redacted, form bodies are not logged at all."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

_SECRET_KEYS = ("token", "secret", "code", "password", "authorization")


@dataclass(frozen=True)
class RequestRecord:
    seq: int
    at: float  # sandbox epoch seconds
    host: str
    method: str
    path: str  # path under the host prefix
    query: str
    token_id: str | None
    shop: str | None
    status: int
    fault: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def redact_query(pairs: list[tuple[str, str]]) -> str:
    out = []
    for key, value in pairs:
        if any(s in key.lower() for s in _SECRET_KEYS):
            value = "***"
        out.append(f"{key}={value}")
    return "&".join(out)


class RequestLog:
    def __init__(self, maxlen: int = 200_000) -> None:
        self._entries: deque[RequestRecord] = deque(maxlen=maxlen)
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, **fields: Any) -> RequestRecord:
        with self._lock:
            self._seq += 1
            record = RequestRecord(seq=self._seq, **fields)
            self._entries.append(record)
            return record

    def entries(
        self,
        host: str | None = None,
        shop: str | None = None,
        since_seq: int = 0,
        path: str | None = None,
    ) -> list[RequestRecord]:
        with self._lock:
            items = list(self._entries)
        return [
            r
            for r in items
            if r.seq > since_seq
            and (host is None or r.host == host)
            and (shop is None or r.shop == shop)
            and (path is None or r.path == path)
        ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
