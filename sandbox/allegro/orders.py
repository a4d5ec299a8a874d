"""Allegro checkout forms and the order event journal, generated lazily.

Form k is bought at `appear(k)` and then moves through constant-delay stages
(see `streams`): FILLED_IN +2 min, READY_FOR_PROCESSING (paid) +10 min,
fulfilment PROCESSING +2 h, SENT +1 day, PICKED_UP +3 days. 6 % are
cancelled before payment (+30 min; half BUYER_CANCELLED, half
AUTO_CANCELLED), 3 % after payment (+3 h, BUYER_CANCELLED, fulfilment
CANCELLED). 4 % get a second READY_FOR_PROCESSING event (+11 min, a real
duplicate with its own id). 5 % of picked-up orders become customer returns
(+5 days; the order itself does not change). Some purchases are paid together and merged into
a new checkout form (see merges.py): the old forms then answer 404 and leave the listing.

Event ids encode (time, stage, k) as `time * 10**10 + stage * 10**8 + k`:
numeric strings that grow in insertion order, decodable into a cursor.
`occurredAt` is up to 90 s before the insertion time, so it can look
shuffled relative to ids, as on the real journal.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any

from sandbox.allegro.merges import Merge, MergePlan
from sandbox.allegro.returns import customer_return
from sandbox.catalog import AllegroOffer, money
from sandbox.hashing import h64, randint, u01, uuid_for
from sandbox.scenario import ShopSpec, TimeLayout
from sandbox.streams import Change, ChangeAt, Timeline
from sandbox.timefmt import utc_z

S_BOUGHT, S_FILLED, S_PAID, S_PAID_DUP, S_CANCEL_PRE = 0, 1, 2, 3, 4
S_PROCESSING, S_CANCEL_POST, S_SENT, S_PICKED, S_RETURN = 5, 6, 7, 8, 9
# A forced (operator) merge's READY_FOR_PROCESSING: not a timeline stage (it is not a constant
# delay after a purchase), merged into the journal from MergePlan.forced_list.
S_MERGED = 10
EVENT_STAGES = frozenset(range(0, 9))
RETURN_DELAY = 5 * 86400
ORDER_RETENTION = 365 * 86400
EVENT_TYPES = (
    "BOUGHT",
    "FILLED_IN",
    "READY_FOR_PROCESSING",
    "BUYER_CANCELLED",
    "FULFILLMENT_STATUS_CHANGED",
    "BUYER_MODIFIED",
    "AUTO_CANCELLED",
)
_FIRST = ("Anna", "Piotr", "Kasia", "Tomasz", "Ola", "Marek")
_LAST = ("Nowak", "Kowalski", "Wiśniewska", "Wójcik", "Lewandowski")
_CITIES = (("Warszawa", "00-001"), ("Kraków", "30-001"), ("Poznań", "60-001"), ("Gdańsk", "80-001"))
_DELIVERY = (
    ("2488f7b7-5d1c-4d65-b85c-4cbcf253fd93", "Allegro Paczkomaty InPost"),
    ("7203cb90-864c-4cda-bf08-dc883f0c78ad", "Allegro Kurier DPD"),
)


class AllegroOrderModel:
    def __init__(self, seed: int, shop: ShopSpec, offers: tuple[AllegroOffer, ...], layout: TimeLayout) -> None:
        self.seed, self.shop, self.offers, self.layout = seed, shop, offers, layout
        self.stream = 0x5000 + shop.index
        self.buyers = max(5, shop.orders // 3)
        self._id_cache: dict[str, int] = {}
        self._id_scanned = 0
        self.timeline = Timeline(
            layout,
            self.appear,
            [
                Change(S_BOUGHT, "form", 0, lambda k: True),
                Change(S_FILLED, "form", 120, self._when(S_FILLED, lambda k: True)),
                Change(S_PAID, "form", 600, self._when(S_PAID, self.paid)),
                Change(S_PAID_DUP, "dup", 660, self._when(S_PAID_DUP, self.paid_dup)),
                Change(S_CANCEL_PRE, "form", 1800, self.cancel_pre),
                Change(S_PROCESSING, "form", 7200, self._when(S_PROCESSING, self.paid)),
                Change(S_CANCEL_POST, "form", 3 * 3600, self._when(S_CANCEL_POST, self.cancel_post)),
                Change(S_SENT, "form", 86400, self._when(S_SENT, self.shipped)),
                Change(S_PICKED, "form", 3 * 86400, self._when(S_PICKED, self.shipped)),
                Change(S_RETURN, "return", RETURN_DELAY, self._when(S_RETURN, self.returned)),
            ],
        )
        self.merges = MergePlan(
            seed,
            self.stream,
            shop.allegro_merge_share,
            self.timeline.in_range,
            lambda last: self.timeline.change_time(S_PAID, last),
        )

    # -- per-form facts -------------------------------------------------------
    def _u(self, k: int, salt: int) -> float:
        return u01(self.seed, self.stream, k, salt)

    def appear(self, k: int) -> int:
        return self.layout.start + int((k + 0.9 * self._u(k, 1)) * self.layout.step)

    def cancel_pre(self, k: int) -> bool:
        # A merged purchase is paid (together with the others), never cancelled unpaid.
        return self._u(k, 2) < 0.06 and self.merges.of(k) is None

    def paid(self, k: int) -> bool:
        return not self.cancel_pre(k) and not self.absorbed(k)

    # -- merges (merges.py) ---------------------------------------------------
    def _when(self, tag: int, applies: Callable[[int], bool]) -> Callable[[int], bool]:
        return lambda k: applies(k) and self._alive(k, tag)

    def _alive(self, k: int, tag: int) -> bool:
        """Whether a change of a merged form still happens: before the merge all do; after it
        only the new form's (the last member's, minus FILLED_IN and a payment of its own)."""
        m = self.merges.of(k)
        if m is None or self.timeline.change_time(tag, k) <= m.at:
            return True
        return k == m.last and tag not in (S_FILLED, S_PAID)

    def absorbed(self, k: int) -> bool:
        """Merged into a form carried on by another index (gone after the merge)."""
        m = self.merges.of(k)
        return m is not None and k != m.last

    def merged(self, k: int, now: float) -> Merge | None:
        m = self.merges.of(k)
        return m if m is not None and now >= m.at else None

    def gone(self, k: int, now: float) -> bool:
        m = self.merged(k, now)
        return m is not None and k != m.last

    def form_id_at(self, k: int, now: float) -> str:
        """The id form k is known by at `now`: the new form's id once the last member of a merge."""
        m = self.merged(k, now)
        return m.new_id if m is not None and k == m.last else self.form_id(k)

    def line_items_at(self, k: int, now: float) -> list[dict[str, Any]]:
        m = self.merged(k, now)
        if m is None or k != m.last:
            return self.line_items(k)
        # Newest purchase first, as in the merged form quoted in allegro-api issue 9973.
        return [item for j in reversed(m.members) for item in self.line_items(j)]

    def paid_dup(self, k: int) -> bool:
        return self.paid(k) and self._u(k, 3) < 0.04

    def cancel_post(self, k: int) -> bool:
        return self.paid(k) and self._u(k, 4) < 0.03

    def shipped(self, k: int) -> bool:
        return self.paid(k) and not self.cancel_post(k)

    def returned(self, k: int) -> bool:
        return self.shipped(k) and self._u(k, 5) < 0.05

    def form_id(self, k: int) -> str:
        return uuid_for(self.seed, self.stream, k, 6)

    def return_id(self, k: int) -> str:
        return uuid_for(self.seed, self.stream, k, 7)

    def buyer_index(self, k: int) -> int:
        # The purchases of a natural merge are one buyer's (its first form's).
        m = self.merges.natural(k)
        return h64(self.seed, self.stream, m.members[0] if m else k, 8) % self.buyers

    def buyer_login(self, k: int) -> str:
        return f"kupujacy_{self.shop.index}_{self.buyer_index(k)}"

    def visible_count(self, now: float) -> int:
        return self.timeline.count_by(now)

    def oldest_retained(self, now: float) -> int:
        return self.timeline.first_index_at(now - ORDER_RETENTION)

    def index_of(self, form_id: str, now: float) -> int | None:
        """Form ids are hashes, so finding one scans the visible forms once;
        the cache makes later lookups O(1)."""
        end = self.visible_count(now)
        if form_id not in self._id_cache and self._id_scanned < end:
            for k in range(self._id_scanned, end):
                self._id_cache[self.form_id(k)] = k
                m = self.merges.natural(k)
                if m is not None and k == m.last:
                    self._id_cache[m.new_id] = k
            self._id_scanned = end
        return self._id_cache.get(form_id)

    # -- state ----------------------------------------------------------------
    def stages(self, k: int, now: float) -> list[int]:
        return [c.tag for c in self.timeline.applied("form", k, now)]

    def _timed(self, k: int, now: float) -> list[tuple[int, int]]:
        """(time, stage) of the form's changes by `now`, oldest first; a forced merge's payment
        is the stage S_MERGED at the merge."""
        out = [(self.timeline.change_time(s, k), s) for s in self.stages(k, now)]
        m = self.merged(k, now)
        if m is not None and m.forced and k == m.last:
            out.append((m.at, S_MERGED))
        return sorted(out)

    def paid_at(self, k: int, now: float) -> int | None:
        return next((t for t, s in self._timed(k, now) if s in (S_PAID, S_MERGED)), None)

    def state(self, k: int, now: float) -> tuple[str, str, int, str]:
        """(status, fulfillment status, updatedAt, revision) at `now`."""
        timed = self._timed(k, now)
        status = "BOUGHT"
        fulfillment = "NEW"
        for _t, s in timed:
            if s == S_FILLED:
                status = "FILLED_IN"
            elif s in (S_PAID, S_MERGED):
                status = "READY_FOR_PROCESSING"
            elif s in (S_CANCEL_PRE, S_CANCEL_POST):
                status = "CANCELLED"
                fulfillment = "CANCELLED" if s == S_CANCEL_POST else fulfillment
            elif s == S_PROCESSING:
                fulfillment = "PROCESSING"
            elif s == S_SENT:
                fulfillment = "SENT"
            elif s == S_PICKED:
                fulfillment = "PICKED_UP"
        updated, last = timed[-1]
        revision = f"{h64(self.seed, self.stream, k, 100 + last) % 16**8:08x}"
        return status, fulfillment, updated, revision

    def line_items(self, k: int) -> list[dict[str, Any]]:
        n = 1 if self._u(k, 9) < 0.7 else randint(self.seed, self.stream, k, 10, 2, 3)
        out = []
        for n_ix in range(n):
            offer = self.offers[h64(self.seed, self.stream, k, 20 + n_ix) % len(self.offers)]
            out.append(
                {
                    "id": uuid_for(self.seed, self.stream, k, 40 + n_ix),
                    "offer": {"id": offer.offer_id, "name": offer.name, "external": {"id": offer.external_id}},
                    "quantity": randint(self.seed, self.stream, k, 30 + n_ix, 1, 2),
                    "originalPrice": money(offer.price),
                    "price": money(offer.price),
                    "boughtAt": utc_z(self.appear(k), millis=True),
                }
            )
        return out

    def total(self, k: int, now: float) -> int:
        items = self.line_items_at(k, now)
        goods = sum(int(round(float(i["price"]["amount"]) * 100)) * i["quantity"] for i in items)
        return goods + 999

    def buyer(self, k: int) -> dict[str, Any]:
        b = self.buyer_index(k)
        first, last = _FIRST[b % len(_FIRST)], _LAST[b % len(_LAST)]
        city, post = _CITIES[b % len(_CITIES)]
        login = self.buyer_login(k)
        return {
            "id": str(40_000_000 + self.shop.index * 1_000_000 + b),
            "email": f"{login}@allegromail.pl",
            "login": login,
            "firstName": first,
            "lastName": last,
            "guest": False,
            "phoneNumber": f"+48 600 {b % 1000:03d} {b // 1000 % 1000:03d}",
            "address": {"street": f"Prosta {b % 90 + 1}", "city": city, "postCode": post, "countryCode": "PL"},
        }

    def checkout_form(self, k: int, now: float) -> dict[str, Any]:
        status, fulfillment, updated, revision = self.state(k, now)
        buyer = self.buyer(k)
        total = self.total(k, now)
        paid_at = self.paid_at(k, now)
        payment: dict[str, Any] = {"id": uuid_for(self.seed, self.stream, k, 60), "type": "ONLINE", "provider": "P24"}
        if paid_at is not None:
            payment["finishedAt"] = utc_z(paid_at, millis=True)
            payment["paidAmount"] = money(total)
        method = _DELIVERY[k % len(_DELIVERY)]
        form: dict[str, Any] = {
            "id": self.form_id_at(k, now),
            "messageToSeller": "Proszę o szybką wysyłkę" if self._u(k, 11) < 0.2 else "",
            "buyer": buyer,
            "payment": payment,
            "status": status,
            "fulfillment": {
                "status": fulfillment,
                "shipmentSummary": {"lineItemsSent": "ALL" if fulfillment in ("SENT", "PICKED_UP") else "NONE"},
            },
            "delivery": {
                "address": {
                    "firstName": buyer["firstName"],
                    "lastName": buyer["lastName"],
                    "street": buyer["address"]["street"],
                    "city": buyer["address"]["city"],
                    "zipCode": buyer["address"]["postCode"],
                    "countryCode": "PL",
                },
                "method": {"id": method[0], "name": method[1]},
                "cost": money(999),
                "smart": self._u(k, 12) < 0.5,
                "calculatedNumberOfPackages": 1,
            },
            "invoice": {"required": False},
            "lineItems": self.line_items_at(k, now),
            "surcharges": [],
            "summary": {"totalToPay": money(total)},
            "updatedAt": utc_z(updated, millis=True),
            "revision": revision,
            "marketplace": {"id": "allegro-pl"},
            "note": None,
        }
        # Drift from the 2023 spec, as the facts page says: `discounts` is
        # sometimes missing in current responses; connectors must cope.
        if self._u(k, 13) < 0.5:
            form["discounts"] = []
        return form

    # -- event journal ----------------------------------------------------------
    @staticmethod
    def event_id(at: ChangeAt) -> str:
        t, stage, k = at
        return str(t * 10**10 + stage * 10**8 + k)

    @staticmethod
    def decode_event_id(event_id: str) -> ChangeAt:
        n = int(event_id)
        return n // 10**10, n // 10**8 % 100, n % 10**8

    def event_type(self, stage: int, k: int) -> str:
        if stage == S_BOUGHT:
            return "BOUGHT"
        if stage == S_FILLED:
            return "FILLED_IN"
        if stage in (S_PAID, S_PAID_DUP, S_MERGED):
            return "READY_FOR_PROCESSING"
        if stage == S_CANCEL_PRE:
            return "AUTO_CANCELLED" if self._u(k, 14) < 0.5 else "BUYER_CANCELLED"
        if stage == S_CANCEL_POST:
            return "BUYER_CANCELLED"
        return "FULFILLMENT_STATUS_CHANGED"

    def event(self, at: ChangeAt, seller_id: str) -> dict[str, Any]:
        t, stage, k = at
        shuffle = 0 if stage == S_BOUGHT else int(u01(self.seed, self.stream, k, 200 + stage) * 90)
        buyer = self.buyer(k)
        # The revision the form had right after this event.
        _s, _f, _u, revision = self.state(k, t)
        return {
            "id": self.event_id(at),
            "type": self.event_type(stage, k),
            "occurredAt": utc_z(t - shuffle, millis=True),
            "order": {
                "seller": {"id": seller_id},
                "buyer": {key: buyer[key] for key in ("id", "email", "login", "guest")},
                "lineItems": self.line_items_at(k, t),
                "checkoutForm": {"id": self.form_id_at(k, t), "revision": revision},
            },
        }

    def events_after(
        self, cursor: ChangeAt | None, oldest: float, now: float, tags: set[int] | None = None
    ) -> Iterator[ChangeAt]:
        stages = set(EVENT_STAGES) if tags is None else tags & EVENT_STAGES
        timeline = self.timeline.changes_between(oldest, now, after=cursor, tags=stages)
        if tags is not None and S_MERGED not in tags or not self.merges.forced_list:
            return timeline
        forced = (
            at
            for at in ((m.at, S_MERGED, m.last) for m in self.merges.forced_list)
            if oldest <= at[0] <= now and (cursor is None or at > cursor)
        )
        return heapq.merge(timeline, sorted(forced))

    def latest_event(self, now: float) -> ChangeAt | None:
        best: ChangeAt | None = None
        for stage in EVENT_STAGES:
            k = self.timeline.latest_before(stage, now)
            if k is not None:
                at = (self.timeline.change_time(stage, k), stage, k)
                best = at if best is None or at > best else best
        for m in self.merges.forced_list:
            at = (m.at, S_MERGED, m.last)
            best = at if at[0] <= now and (best is None or at > best) else best
        return best

    def force_merge(self, form_ids: list[str], now: float) -> Merge:
        """Merge these forms now, as a buyer paying them together (the operator API). Each must
        be readable and still unpaid and uncancelled (BOUGHT or FILLED_IN), outside any merge."""
        ks = []
        for form_id in dict.fromkeys(form_ids):
            k = self.index_of(form_id, now)
            if k is None or self.appear(k) > now or self.form_id_at(k, now) != form_id or self.gone(k, now):
                raise ValueError(f"checkout form {form_id} is not readable now")
            if self.merges.of(k) is not None or self.state(k, now)[0] not in ("BOUGHT", "FILLED_IN"):
                raise ValueError(f"checkout form {form_id} is paid, cancelled or merged already")
            ks.append(k)
        if len(ks) < 2:
            raise ValueError("a merge takes at least two checkout forms")
        merge = self.merges.add_forced(tuple(sorted(ks)), int(now))
        self._id_cache[merge.new_id] = merge.last
        return merge

    def customer_return(self, k: int) -> dict[str, Any]:
        return customer_return(self, k, self.timeline.change_time(S_RETURN, k))
