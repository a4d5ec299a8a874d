"""Payload parsing: typed fields, raw rows kept, bad rows reported by position."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors import parsing
from connectors.allegro.models import CHECKOUT_FORM_PARSER
from connectors.wildberries.models import ORDER_PARSER, SALE_PARSER


def wb_order(srid: str, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "date": "2026-11-20T10:00:00",
        "lastChangeDate": "2026-11-20T11:00:00",
        "nmId": 1,
        "totalPrice": 1234.1,
        "finishedPrice": 999.99,
        "priceWithDisc": 1000,
        "isCancel": False,
        "cancelDate": "0001-01-01T00:00:00",
        "gNumber": "basket",
        "srid": srid,
        "somethingNew": {"x": 1},
    }
    row.update(over)
    return row


def test_wb_order_is_typed_and_keeps_the_raw_row() -> None:
    raw = wb_order("s1")
    (order,), errors = ORDER_PARSER.parse([raw])
    assert errors == []
    assert order.last_change_date == datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert order.total_price == Decimal("1234.1") and order.cancel_date is None
    assert order.raw is raw and order.raw["somethingNew"] == {"x": 1}


def test_a_malformed_row_is_reported_with_its_position_and_the_rest_survive() -> None:
    rows = [wb_order("s1"), wb_order("s2", nmId="not-a-number"), wb_order("s3", lastChangeDate=None)]
    orders, errors = ORDER_PARSER.parse(rows)
    assert [o.srid for o in orders] == ["s1"]
    assert [(e.index, e.key) for e in errors] == [(1, "s2"), (2, "s3")]
    assert "nmId" in errors[0].message


def test_a_large_response_comes_as_pages_and_only_the_last_carries_the_cursor() -> None:
    rows: list[object] = [wb_order(f"s{i}") for i in range(7)]
    rows[4] = wb_order("s4", nmId="bad")
    keep = [0, 1, 2, 4, 5, 6]  # the paginator dropped row 3 (seen before)
    pages = []
    for page in ORDER_PARSER.pages(rows, keep, "CURSOR", size=2):
        pages.append(page)
        # Parsed one page at a time: later rows are still there, earlier ones released.
        assert all(rows[i] is not None for i in keep if i > max(keep[: 2 * len(pages)]))
    assert [[o.srid for o in p.items] for p in pages] == [["s0", "s1"], ["s2"], ["s5", "s6"]]
    assert [(e.index, e.key) for e in pages[1].errors] == [(4, "s4")]  # a position in the response
    assert [p.cursor for p in pages] == [None, None, "CURSOR"]
    assert [(p.received, p.requests) for p in pages] == [(0, 0), (0, 0), (7, 1)]
    assert all(rows[i] is None for i in keep) and rows[3] is not None


def test_sale_prefix_decides_return() -> None:
    rows = [wb_order("s1", saleID="S123", forPay=10.5), wb_order("s2", saleID="R9", forPay=-10.5)]
    sales, _ = SALE_PARSER.parse(rows)
    assert [s.is_return for s in sales] == [False, True]
    assert sales[1].for_pay == Decimal("-10.5")


def test_checkout_form_tolerates_drift_and_parses_money() -> None:
    form = {
        "id": "29b2b7f0-1e2a-11ee-9f5a-000000000001",
        "status": "READY_FOR_PROCESSING",
        "lineItems": [
            {
                "id": "li1",
                "quantity": 2,
                "price": {"amount": "12.30", "currency": "PLN"},
                "boughtAt": "2026-11-20T10:00:00.123Z",
                "offer": {"id": "o1", "name": "Mug"},
            }
        ],
        "summary": {"totalToPay": {"amount": "24.60", "currency": "PLN"}},
        "updatedAt": "2026-11-20T10:05:00.000Z",
        "note": {"text": "new field"},
    }
    (parsed,), errors = CHECKOUT_FORM_PARSER.parse([form])
    assert errors == [] and parsed.total == Decimal("24.60")
    assert parsed.bought_at == datetime(2026, 11, 20, 10, 0, 0, 123000, tzinfo=UTC)
    assert parsed.raw["note"] == {"text": "new field"}


def test_a_large_array_decodes_in_parts_exactly_as_a_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "LARGE_BODY", 10)
    monkeypatch.setattr(parsing, "_PART", 40)
    tricky = [
        wb_order("s1", subject='ends with },{"'),  # a split candidate inside a string
        wb_order("s2", somethingNew=[{"a": 1}, {"b": "},{"}]),  # ... and inside a nested list
        *(wb_order(f"s{i}", subject="Лампа") for i in range(3, 40)),
    ]
    body = json.dumps(tricky, ensure_ascii=False, separators=(",", ":")).encode()
    assert parsing.decode_json(body) == tricky
    clean = tricky[2:]
    calls: list[int] = []
    loads = json.loads
    monkeypatch.setattr(parsing.json, "loads", lambda b: calls.append(len(b)) or loads(b))
    assert parsing.decode_json(json.dumps(clean, separators=(",", ":")).encode()) == clean
    assert len(calls) > 5  # it was decoded in parts
    monkeypatch.setattr(parsing.json, "loads", loads)
    assert parsing.decode_json(json.dumps(tricky, indent=1).encode()) == tricky  # nothing to split on
    assert parsing.decode_json(b'{"not": "an array"}') == {"not": "an array"}
    with pytest.raises(ValueError):
        parsing.decode_json(body[:-7] + b"]")  # cut short: an error, as json.loads gives


def _streamed(body: bytes, chunk: int, part_bytes: int) -> tuple[list, list[int], object]:
    decoder = parsing.ArrayParts(part_bytes)
    rows, sizes = [], []
    for start in range(0, len(body), chunk):
        for part in decoder.feed(body[start : start + chunk]):
            sizes.append(len(part))
            rows.extend(part)
    last = decoder.close()
    if last is not None:
        sizes.append(len(last))
        rows.extend(last)
    return rows, sizes, decoder.value


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_an_array_streamed_in_parts_is_exactly_json_loads(chunk: int) -> None:
    tricky = [
        wb_order("s1", subject='ends with },{"'),  # a split candidate inside a string
        wb_order("s2", somethingNew=[{"a": 1}, {"b": "},{"}]),  # ... and inside a nested list
        *(wb_order(f"s{i}", subject="Лампа") for i in range(3, 40)),
    ]
    body = json.dumps(tricky, ensure_ascii=False, separators=(",", ":")).encode()
    rows, sizes, _ = _streamed(body, chunk, part_bytes=300)
    assert rows == tricky and len(sizes) > 5  # in parts, none of them the whole body
    # Nowhere to split (pretty-printed): decoded whole at the end, still exactly.
    pretty = json.dumps(tricky, indent=1).encode()
    assert _streamed(pretty, chunk, part_bytes=300)[0] == tricky
    assert _streamed(b" [] ", chunk, 300)[:2] == ([], [0])
    assert _streamed(b'{"not": "an array"}', chunk, 300) == ([], [], {"not": "an array"})
    assert _streamed(b"", chunk, 300) == ([], [], None)
    with pytest.raises(ValueError):
        _streamed(body[:-7] + b"]", chunk, 300)  # cut short: an error, as json.loads gives
