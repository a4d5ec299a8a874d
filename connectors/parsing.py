"""Turning decoded JSON rows into models without letting one bad row sink a page.

Fast path: validate the whole list with one ``TypeAdapter`` (pydantic-core loops in
Rust; about 2x the cost of ``json.loads`` for a WB orders page, against 4x for a
Python loop of ``model_validate``). Only when that fails do we validate the good rows
again and report each bad one with its position in the page.

Every model keeps the dict the marketplace sent (``.raw``): backups store exactly that.
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter, ValidationError, model_validator

from connectors.errors import PayloadError
from connectors.timeutil import msk_to_utc, msk_to_utc_or_none, parse_utc

_gc_lock = threading.Lock()
_gc_holders = 0
_gc_restore = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a page is decoded and parsed (re-entrant, thread-safe).

    An 80,000-row page allocates millions of containers and none of them form cycles,
    yet each allocation burst triggers traversals of the growing heap: pausing cuts
    about a third off decode+parse. Reference counting still frees everything.
    """
    global _gc_holders, _gc_restore
    with _gc_lock:
        if _gc_holders == 0:
            _gc_restore = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_restore:
                gc.enable()


LARGE_BODY = 8 << 20  # bytes; above this a JSON array is decoded in parts
_PART = 4 << 20


def decode_json(body: bytes) -> Any:
    """`json.loads(body)`, with a lower memory peak for large arrays (a WB statistics page is
    57 MB of JSON that decodes to ~180 MB of dicts): `json.loads` first copies the whole body
    into a str (for Cyrillic text, ~100 MB more), so a large array is decoded in parts of ~4 MB,
    split after a `}` that ends a top-level row. A split anywhere else (inside a string or a
    nested object) always leaves its part unterminated and undecodable: then the whole body is
    decoded at once, so the result is always exactly `json.loads(body)`'s."""
    if len(body) <= LARGE_BODY or body[:1] != b"[" or body[-1:] != b"]":
        return json.loads(body)
    rows: list[Any] = []
    start = 1  # just after "["
    try:
        while start < len(body) - 1:
            split = body.find(b"},{", start + _PART, len(body) - 1)
            if split < 0 and start == 1:
                return json.loads(body)  # nowhere to split (say, pretty-printed): as a whole
            end = len(body) - 1 if split < 0 else split + 1  # just after the "}"
            part = json.loads(b"[" + body[start:end] + b"]")
            if not isinstance(part, list):
                raise ValueError("not an array")
            rows.extend(part)
            start = end + 1  # past the ","
    except ValueError:
        return json.loads(body)
    return rows


class ArrayParts:
    """A JSON array decoded as its bytes arrive, in parts of about `part_bytes`: feed it the
    body chunk by chunk, take the parts of rows as they complete, then `close()` for the rest.

    The body is never held whole (a WB statistics response is 57 MB of JSON for 80,000 rows):
    only the bytes of the part being decoded. Parts are split after a `}` that ends a top-level
    element and before the `,{` that starts the next, as in `decode_json`; a split anywhere else
    (inside a string, inside a nested value) leaves its part undecodable, and the next split is
    tried. The rows, in order, are exactly `json.loads(body)`'s. A body that is not an array
    (or has nowhere to split) is decoded whole at `close()`.
    """

    def __init__(self, part_bytes: int = _PART) -> None:
        self.part_bytes = part_bytes
        self._buf = bytearray()
        self._array: bool | None = None  # unknown until the first byte that is not blank
        self._search = part_bytes  # where the next split is looked for (bytes before it were tried)
        self.value: Any = None  # what close() decoded when the body is not an array

    def feed(self, chunk: bytes) -> list[list[Any]]:
        self._buf += chunk
        if self._array is None:
            text = self._buf.lstrip()
            if not text:
                return []
            self._array = text[:1] == b"["
            if self._array:
                self._buf = bytearray(text[1:])  # just after the "["
        return self._parts() if self._array else []

    def _parts(self) -> list[list[Any]]:
        parts: list[list[Any]] = []
        while len(self._buf) > self._search:
            split = self._buf.find(b"},{", self._search)
            if split < 0:
                self._search = max(self.part_bytes, len(self._buf) - 2)  # scan only new bytes next
                break
            try:
                part = json.loads(b"[" + self._buf[: split + 1] + b"]")
            except ValueError:
                self._search = split + 1  # not between two rows: try the next "},{"
                continue
            parts.append(part)
            del self._buf[: split + 2]  # the part and its ",": the next row starts here
            self._search = self.part_bytes
        return parts

    def close(self) -> list[Any] | None:
        """The last part (an array), or None and the whole value in `value` (not an array)."""
        buf, self._buf = bytes(self._buf), bytearray()
        if self._array is None:
            self.value = json.loads(buf) if buf.strip() else None
            return None
        if not self._array:
            self.value = json.loads(buf)
            return None
        rest = json.loads(b"[" + buf)  # ends with the array's "]"
        if not isinstance(rest, list):
            raise ValueError("not an array")
        return rest


class Payload(BaseModel):
    """Base of marketplace payload models: unknown fields accepted (ignored here, kept in `raw`)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=False)

    @property
    def raw(self) -> dict[str, Any]:
        """The row exactly as the marketplace sent it."""
        private = self.__pydantic_private__
        return private.get("raw", {}) if private else {}


def attach_raw(model: Payload, row: dict[str, Any]) -> None:
    # Not a declared PrivateAttr on purpose: declaring one makes pydantic run a Python
    # hook for every instance, which costs about a third of a page's parse time.
    object.__setattr__(model, "__pydantic_private__", {"raw": row})


_MSK_OFFSET = timedelta(hours=3)


class MoscowTimes(Payload):
    """Statistics rows: fields named in `msk_fields` are Moscow wall time on the wire.

    pydantic-core parses them (fast, in Rust); one after-validator per row then moves
    naive values to aware UTC and turns WB's year-1 placeholder into None. One Python
    call per row instead of one per field: about a third off the parse time of a page.
    """

    msk_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _moscow_to_utc(self) -> MoscowTimes:
        values = self.__dict__
        for name in self.msk_fields:
            value = values[name]
            if value is None:
                continue
            if value.year == 1:
                values[name] = None  # '0001-01-01T00:00:00': no date
            elif value.tzinfo is None:
                values[name] = (value - _MSK_OFFSET).replace(tzinfo=UTC)
            else:
                values[name] = value.astimezone(UTC)
        return self


def _decimal(value: Any) -> Any:
    # str() first: Decimal(0.1) would keep the float's binary noise.
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def _msk(value: Any) -> Any:
    return msk_to_utc(value) if isinstance(value, str) else value


def _msk_opt(value: Any) -> Any:
    return msk_to_utc_or_none(value) if isinstance(value, str) or value is None else value


def _utc(value: Any) -> Any:
    return parse_utc(value) if isinstance(value, str) else value


Dec = Annotated[Decimal, BeforeValidator(_decimal)]
MskDatetime = Annotated[datetime, BeforeValidator(_msk)]
MskDatetimeOpt = Annotated[datetime | None, BeforeValidator(_msk_opt)]
UtcDatetime = Annotated[datetime, BeforeValidator(_utc)]
UtcDatetimeOpt = Annotated[datetime | None, BeforeValidator(_utc)]


@dataclass(frozen=True)
class RowError:
    """A row that did not parse: its position in the page as sent, and why."""

    index: int
    message: str
    key: str | None = None


M = TypeVar("M", bound=Payload)
C = TypeVar("C")


@dataclass
class Page(Generic[M, C]):
    """One page of results. Write `items`, then store `cursor`: it covers this page.

    A large response may be delivered as several pages (see `RowParser.pages`): all but the
    last have `cursor` None (nothing to store yet) and count no request of their own."""

    items: list[M]
    cursor: C
    errors: list[RowError] = field(default_factory=list)
    received: int = 0  # rows in the response, before dedupe and errors
    requests: int = 1  # HTTP requests this page took (0: the rest of a response already counted)


class RowParser(Generic[M]):
    """Parse a list of dicts into `model`s, collecting per-row errors."""

    def __init__(self, model: type[M], key_field: str | None = None) -> None:
        self.model = model
        self.key_field = key_field
        self._list = TypeAdapter(list[model])  # type: ignore[valid-type]

    def parse(self, rows: Any, *, what: str = "rows") -> tuple[list[M], list[RowError]]:
        if not isinstance(rows, list):
            raise PayloadError(f"expected a list of {what}, got {type(rows).__name__}")
        with gc_paused():
            try:
                models = self._list.validate_python(rows)
            except ValidationError as exc:
                return self._parse_slow(rows, exc)
            for model, row in zip(models, rows, strict=True):
                attach_raw(model, row)
            return models, []

    def pages(
        self, rows: list[Any], keep: list[int], cursor: C, *, size: int, what: str = "rows"
    ) -> Iterator[Page[M, C | None]]:
        """The kept rows of one decoded response as pages of at most `size` models, parsed one
        page at a time, so a response's models never all exist at once. Each page's decoded
        rows are released from `rows` as it goes (they live on in the models' `.raw`, until the
        caller drops the page). Only the last page carries `cursor` and the response's counts;
        errors are positions in the response."""
        if not keep:
            return
        received = len(rows)
        for start in range(0, len(keep), size):
            part = keep[start : start + size]
            parsed = self.parse([rows[i] for i in part], what=what)
            for i in part:
                rows[i] = None
            last = start + size >= len(keep)
            yield Page(
                parsed[0],
                cursor if last else None,
                remap_errors(parsed[1], part),
                received=received if last else 0,
                requests=1 if last else 0,
            )
            del parsed  # before the next page is parsed: the caller's page holds the only reference

    def _parse_slow(self, rows: list[Any], exc: ValidationError) -> tuple[list[M], list[RowError]]:
        bad: dict[int, list[str]] = {}
        for err in exc.errors(include_input=False, include_url=False):
            loc = err["loc"]
            index = loc[0] if loc and isinstance(loc[0], int) else -1
            where = ".".join(str(p) for p in loc[1:]) or "row"
            bad.setdefault(int(index), []).append(f"{where}: {err['msg']}")
        good = [i for i in range(len(rows)) if i not in bad]
        models = self._list.validate_python([rows[i] for i in good])
        for model, i in zip(models, good, strict=True):
            attach_raw(model, rows[i])
        return models, [self._error(rows, i, msgs) for i, msgs in sorted(bad.items())]

    def _error(self, rows: list[Any], index: int, messages: list[str]) -> RowError:
        row = rows[index] if 0 <= index < len(rows) else None
        key = row.get(self.key_field) if self.key_field and isinstance(row, dict) else None
        return RowError(index=index, message="; ".join(messages), key=None if key is None else str(key))


def remap_errors(errors: list[RowError], positions: list[int]) -> list[RowError]:
    """Errors from parsing a subset of a page -> positions in the page as it was sent."""
    return [
        RowError(positions[e.index] if 0 <= e.index < len(positions) else e.index, e.message, e.key) for e in errors
    ]


def require(body: Any, *path: str) -> Any:
    """body[path[0]][path[1]]... or PayloadError naming the missing part."""
    current = body
    for i, part in enumerate(path):
        if not isinstance(current, dict) or part not in current:
            raise PayloadError(f"response lacks {'.'.join(path[: i + 1])}")
        current = current[part]
    return current
