"""Stored payload -> Telegram text (HTML parse mode, every value escaped), in ru, pl or en.

Every field is optional: a payload missing anything (an old row, a marketplace that does not
send it, a price WB has not filled in yet) renders without that line, never raises.
Times are shown in the person's zone; money in the payload's currency, else the shop's.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sellerpulse.notify.texts import (
    CANCEL_TYPES,
    CURRENCY_SIGNS,
    DEFAULT_BY_MARKETPLACE,
    DEFECTIVE,
    ICONS,
    LANGUAGES,
    TITLES,
    WORDS,
)

TELEGRAM_LIMIT = 4096
TEXT_LIMIT = 700  # review text shown at most this long
NAME_LIMIT = 60  # product names in grouped lines


@dataclass(frozen=True, slots=True)
class ShopView:
    id: int
    name: str | None
    marketplace: str | None
    currency: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    text: str
    image_url: str | None = None


def language_for(shop: ShopView, person_language: str | None) -> str:
    """The person's language if we have it, else the shop's, else its marketplace's default."""
    for lang in (person_language, shop.language, DEFAULT_BY_MARKETPLACE.get(shop.marketplace or "")):
        if lang and lang[:2].lower() in LANGUAGES:
            return lang[:2].lower()
    return "en"


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


# -- values ---------------------------------------------------------------------------------


# Characters that change how the text around them is laid out rather than being text: bidi
# embeddings, overrides and isolates (U+202E turns "gpj.exe" into "exe.jpg") and the marks,
# and the C0/C1 controls. A marketplace text (a product name, a review, a warehouse) can hold
# any of them; in a Telegram message they would reorder or hide our own words around them.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_CONTROLS = [c for c in range(0x20) if c != 0x0A] + list(range(0x7F, 0xA0)) + [0x2028, 0x2029]
_NEUTRAL = str.maketrans({**dict.fromkeys(map(ord, BIDI_CONTROLS)), **dict.fromkeys(_CONTROLS, " "), ord("\r"): None})


def neutral(text: str) -> str:
    """`text` without layout controls: bidi controls dropped, other controls (but line breaks)
    as spaces, so a marketplace's text shows as the text it is, in its place."""
    return text.translate(_NEUTRAL)


def unsafe_characters(text: str) -> bool:
    """Whether a name holds anything `neutral` would change (or a line break): what the API
    refuses in names people give (shops, profiles)."""
    return text.translate(_NEUTRAL) != text or "\n" in text


def esc(value: Any) -> str:
    """Every value that goes into a message: neutralised, then HTML-escaped."""
    return html.escape(neutral(str(value)), quote=False)


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    if not text:
        return None
    if limit and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def money(amount: Any, currency: str | None, lang: str) -> str | None:
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError, TypeError):
        return None
    if not value.is_finite():
        return None
    code = _text(currency) or ""
    sign = CURRENCY_SIGNS.get(code.upper(), code)
    number = f"{value:,.2f}"
    if lang != "en":
        number = number.replace(",", " ").replace(".", ",")
    return f"{number} {sign}".strip()


def when(value: Any, tz: ZoneInfo, lang: str) -> str | None:
    moment = _datetime(value)
    if moment is None:
        return None
    local = moment.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M" if lang == "en" else "%d.%m.%Y %H:%M")


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _num(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def stars(value: Any) -> str:
    count = _num(value)
    if count is None:
        return ""
    count = max(0, min(5, count))
    return "★" * count + "☆" * (5 - count)


# -- pieces ---------------------------------------------------------------------------------


class _Lines:
    """Builds a message line by line; a line with a missing value is simply left out."""

    def __init__(self, lang: str) -> None:
        self.words = WORDS[lang]
        self.out: list[str] = []

    def add(self, line: str | None) -> None:
        if line:
            self.out.append(line)

    def field(self, word: str, value: str | None) -> None:
        if value:
            self.out.append(f"{esc(self.words[word])}: {value}")

    def text(self) -> str:
        return "\n".join(self.out)


def title(kind: str, payload: Mapping[str, Any], shop: ShopView, lang: str, count: int = 1) -> str:
    key = "new_order_unpaid" if kind == "new_order" and payload.get("stage") == "bought" else kind
    name = TITLES[lang].get(key, kind)
    times = f" × {count}" if count > 1 else ""
    shop_name = _text(shop.name)
    suffix = f" · {esc(shop_name)}" if shop_name else ""
    return f"{ICONS.get(kind, '🔔')} <b>{esc(name)}{times}</b>{suffix}"


def product_line(item: Mapping[str, Any], lang: str, currency: str | None, limit: int | None = None) -> str | None:
    name = _text(item.get("name"), limit) or _text(item.get("sku"))
    if name is None:
        return None
    parts = [f"<b>{esc(name)}</b>"]
    size = _text(item.get("size"))
    if size and size not in {"0", ""}:
        parts.append(f"({esc(size)})")
    quantity = _num(item.get("quantity"))
    if quantity and quantity > 1:
        parts.append(f"× {quantity}")
    price = money(item.get("price"), item.get("currency") or currency, lang)
    if price:
        parts.append(f"— {esc(price)}")
    return " ".join(parts)


def _place(lines: _Lines, payload: Mapping[str, Any]) -> None:
    lines.field("warehouse", _esc_or_none(payload.get("warehouse")))
    lines.field("region", _esc_or_none(payload.get("region")))


def _esc_or_none(value: Any, limit: int | None = None) -> str | None:
    text = _text(value, limit)
    return esc(text) if text else None


def _code(value: Any) -> str | None:
    text = _text(value)
    return f"<code>{esc(text)}</code>" if text else None


def _items(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = payload.get("items")
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


# -- one notification -----------------------------------------------------------------------


def render(kind: str, payload: Mapping[str, Any], *, shop: ShopView, lang: str, tz: ZoneInfo) -> Message:
    """One notification as one message."""
    payload = payload if isinstance(payload, Mapping) else {}
    body = _BODIES.get(kind, _generic)(payload, shop, lang, tz)
    text = "\n".join(filter(None, [title(kind, payload, shop, lang), body]))
    return Message(_fit(text), _image(payload))


def _currency(payload: Mapping[str, Any], shop: ShopView) -> str | None:
    return _text(payload.get("currency")) or shop.currency


def _order(payload: Mapping[str, Any], shop: ShopView, lang: str, tz: ZoneInfo) -> str:
    lines = _Lines(lang)
    currency = _currency(payload, shop)
    # WB order feed: why it was cancelled ("cancelled by the buyer", "not picked up in time", ...).
    lines.add(_esc_or_none(CANCEL_TYPES[lang].get(str(payload.get("cancel_type")))))
    for item in _items(payload):
        lines.add(product_line(item, lang, currency))
    amount = money(payload.get("amount"), currency, lang)
    lines.field("total", esc(amount) if amount else None)
    _place(lines, payload)
    lines.field("order", _code(payload.get("order_id")))
    lines.add(_esc_or_none(when(payload.get("cancelled_at") or payload.get("bought_at"), tz, lang)))
    return lines.text()


def _sale(payload: Mapping[str, Any], shop: ShopView, lang: str, tz: ZoneInfo) -> str:
    lines = _Lines(lang)
    currency = _currency(payload, shop)
    lines.add(product_line({**payload, "price": payload.get("amount")}, lang, currency))
    lines.add(esc(DEFECTIVE[lang]) if payload.get("defective") else None)
    for_pay = money(payload.get("for_pay"), currency, lang)
    lines.field("for_pay", esc(for_pay) if for_pay else None)
    _place(lines, payload)
    lines.field("sale", _code(payload.get("sale_id")))
    lines.field("order", _code(payload.get("order_id")))
    lines.add(_esc_or_none(when(payload.get("sold_at") or payload.get("created_at"), tz, lang)))
    return lines.text()


def _return(payload: Mapping[str, Any], shop: ShopView, lang: str, tz: ZoneInfo) -> str:
    if payload.get("sale_id") or payload.get("source") == "feed":  # WB: a sale row or the feed's unit
        return _sale(payload, shop, lang, tz)
    lines = _Lines(lang)
    currency = _currency(payload, shop)
    for item in _items(payload):
        lines.add(product_line(item, lang, currency))
        lines.field("reason", _esc_or_none(item.get("reason")))
    lines.field("return_id", _code(payload.get("reference") or payload.get("return_id")))
    lines.field("order", _code(payload.get("order_id")))
    lines.add(_esc_or_none(when(payload.get("created_at"), tz, lang)))
    return lines.text()


def _review(payload: Mapping[str, Any], shop: ShopView, lang: str, tz: ZoneInfo) -> str:
    lines = _Lines(lang)
    lines.add(product_line(payload, lang, None))
    lines.add(stars(payload.get("stars")) or None)
    for key in ("text", "pros", "cons"):
        value = _text(payload.get(key), TEXT_LIMIT)
        lines.add(esc(value) if value else None)
    author = _text(payload.get("author"))
    lines.add(f"— {esc(author)}" if author else None)
    lines.add(_esc_or_none(when(payload.get("created_at"), tz, lang)))
    return lines.text()


def _critical_stock(payload: Mapping[str, Any], shop: ShopView, lang: str, tz: ZoneInfo) -> str:
    lines = _Lines(lang)
    lines.add(product_line(payload, lang, None))
    new, old = _num(payload.get("new_total")), _num(payload.get("old_total"))
    if new is not None:
        was = f" ({esc(lines.words['was'])} {old})" if old is not None else ""
        lines.field("stock", f"<b>{new}</b>{was}")
    warehouses = payload.get("warehouses")
    for row in warehouses if isinstance(warehouses, list) else ():
        if isinstance(row, Mapping) and _num(row.get("quantity")) is not None:
            place = _text(row.get("warehouse")) or "—"
            size = _text(row.get("size"))
            label = f"{place} ({size})" if size else place
            lines.add(f"  • {esc(label)}: {_num(row.get('quantity'))}")
    return lines.text()


def _runout(payload: Mapping[str, Any], shop: ShopView, lang: str, tz: ZoneInfo) -> str:
    lines = _Lines(lang)
    lines.add(product_line(payload, lang, None))
    days = payload.get("days_left")
    lines.field("days_left", f"<b>{esc(days)}</b>" if isinstance(days, int | float) else None)
    total = _num(payload.get("total"))
    lines.field("stock", str(total) if total is not None else None)
    sold = _num(payload.get("sold_30d"))
    lines.field("sold_30d", str(sold) if sold is not None else None)
    return lines.text()


def _reauth(payload: Mapping[str, Any], shop: ShopView, lang: str, tz: ZoneInfo) -> str:
    lines = _Lines(lang)
    lines.add(esc(lines.words["reauth"]))
    lines.field("reason", _esc_or_none(payload.get("reason"), 300))
    lines.field("since", _esc_or_none(when(payload.get("since"), tz, lang)))
    return lines.text()


def _sync_failing(payload: Mapping[str, Any], shop: ShopView, lang: str, tz: ZoneInfo) -> str:
    lines = _Lines(lang)
    lines.field("stream", _code(payload.get("stream")))
    lines.field("since", _esc_or_none(when(payload.get("since"), tz, lang)))
    lines.field("error", _esc_or_none(payload.get("error"), 300))
    return lines.text()


def _generic(payload: Mapping[str, Any], shop: ShopView, lang: str, tz: ZoneInfo) -> str:
    return ""


_BODIES = {
    "new_order": _order,
    "cancellation": _order,
    "buyout": _sale,
    "return": _return,
    "negative_review": _review,
    "critical_stock": _critical_stock,
    "stock_runout": _runout,
    "shop_needs_reauth": _reauth,
    "sync_failing": _sync_failing,
}


def _image(payload: Mapping[str, Any]) -> str | None:
    url = _text(payload.get("image_url"))
    if url is None:
        url = next((_text(i.get("image_url")) for i in _items(payload) if _text(i.get("image_url"))), None)
    return url if url and url.startswith(("https://", "http://")) else None


def _fit(text: str) -> str:
    """Telegram refuses messages over 4096 characters; cut at a line break, never inside a tag."""
    if len(text) <= TELEGRAM_LIMIT:
        return text
    cut = text.rfind("\n", 0, TELEGRAM_LIMIT - 2)
    return text[: cut if cut > 0 else 0] + "\n…"


# -- several notifications as one message ---------------------------------------------------


def render_many(
    kind: str, payloads: Sequence[Mapping[str, Any]], *, shop: ShopView, lang: str, tz: ZoneInfo, basket: bool = False
) -> Message:
    """A group (or a WB basket) as one message: one compact line per notification, all of them
    listed (lines are short so up to 50 fit Telegram's limit)."""
    payloads = [p if isinstance(p, Mapping) else {} for p in payloads]
    if len(payloads) == 1:
        return render(kind, payloads[0], shop=shop, lang=lang, tz=tz)
    # "not paid yet" only when it is true of every order in the message.
    stages = {_text(p.get("stage")) for p in payloads}  # odd values (a list, a number) must not break it
    head = title(kind, {"stage": stages.pop()} if len(stages) == 1 else {}, shop, lang, count=len(payloads))
    lines = [head]
    if basket:
        basket_id = _code(payloads[0].get("basket_id"))
        lines.append(f"{esc(WORDS[lang]['basket'])}: {basket_id}" if basket_id else "")
    lines.extend(_compact(kind, p, shop, lang, tz) for p in payloads)
    if basket:
        total = _sum_money(payloads)
        if total is not None:
            lines.append(f"{esc(WORDS[lang]['total'])}: {esc(money(total, _currency(payloads[0], shop), lang))}")
    image = next((img for p in payloads if (img := _image(p))), None)
    return Message(_fit("\n".join(filter(None, lines))), image)


def _compact(kind: str, payload: Mapping[str, Any], shop: ShopView, lang: str, tz: ZoneInfo) -> str:
    currency = _currency(payload, shop)
    items = _items(payload)
    subject = items[0] if items else payload
    parts = [product_line({**subject, "price": None}, lang, currency, NAME_LIMIT) or "—"]
    if kind == "negative_review":
        parts.append(stars(payload.get("stars")))
    elif kind == "critical_stock":
        old, new = _num(payload.get("old_total")), _num(payload.get("new_total"))
        parts.append(f"{'' if old is None else old} → <b>{'' if new is None else new}</b>")
    elif kind == "stock_runout":
        parts.append(f"{esc(payload.get('days_left'))} d")
    else:
        amount = money(payload.get("amount"), currency, lang)
        parts.extend(filter(None, [esc(amount) if amount else None, _code(payload.get("sale_id"))]))
        if not payload.get("sale_id"):
            parts.append(_code(payload.get("order_id")) or "")
    return "• " + " · ".join(p for p in parts if p)


def _sum_money(payloads: Sequence[Mapping[str, Any]]) -> Decimal | None:
    total = Decimal(0)
    seen = False
    for p in payloads:
        try:
            total += Decimal(str(p.get("amount")))
            seen = True
        except (InvalidOperation, ValueError, TypeError):
            continue
    return total if seen and total.is_finite() else None
