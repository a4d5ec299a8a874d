"""Synthetic response bodies shaped like the real APIs (facts page), deterministic."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

_WAREHOUSES = ["Коледино", "Подольск", "Электросталь", "Казань", "Краснодар"]
_REGIONS = ["Москва", "Московская область", "Татарстан", "Краснодарский край"]


def wb_orders_page(rows: int = 80_000, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 9, 0, 0)
    out = []
    for i in range(rows):
        date = start + timedelta(seconds=i * 7)
        change = date + timedelta(seconds=rng.randint(0, 3600))
        cancelled = rng.random() < 0.05
        price = round(rng.uniform(100, 9000), 2)
        out.append(
            {
                "date": date.isoformat(),
                "lastChangeDate": change.isoformat(),
                "warehouseName": rng.choice(_WAREHOUSES),
                "warehouseType": "Склад WB",
                "countryName": "Россия",
                "oblastOkrugName": "Центральный федеральный округ",
                "regionName": rng.choice(_REGIONS),
                "supplierArticle": f"ART-{i % 500}",
                "nmId": 100_000 + i % 500,
                "barcode": f"2040{i % 5000:09d}",
                "category": "Одежда",
                "subject": "Платья",
                "brand": "Brand",
                "techSize": rng.choice(["42", "44", "46"]),
                "incomeID": 555,
                "isSupply": False,
                "isRealization": True,
                "totalPrice": price,
                "discountPercent": 15,
                "spp": 20,
                "finishedPrice": round(price * 0.7, 2),
                "priceWithDisc": round(price * 0.85, 2),
                "isCancel": cancelled,
                "cancelDate": change.isoformat() if cancelled else "0001-01-01T00:00:00",
                "sticker": str(rng.randint(10**9, 10**10)),
                "gNumber": f"{i // 3:020d}",
                "srid": f"{rng.getrandbits(64):x}.0.0",
            }
        )
    return json.dumps(out, ensure_ascii=False).encode()


def _money(amount: float) -> dict[str, str]:
    return {"amount": f"{amount:.2f}", "currency": "PLN"}


def allegro_checkout_forms(count: int = 10_000, seed: int = 2) -> bytes:
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    forms = []
    for i in range(count):
        bought = (start + timedelta(minutes=i * 3)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        items = []
        for j in range(rng.randint(1, 3)):
            price = rng.uniform(5, 500)
            items.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "quantity": rng.randint(1, 3),
                    "offer": {"id": str(10**10 + i * 3 + j), "name": f"Offer {i}-{j}", "external": {"id": f"SKU{j}"}},
                    "originalPrice": _money(price),
                    "price": _money(price),
                    "boughtAt": bought,
                    "reconciliation": {"value": _money(price), "type": "BILLING"},
                    "selectedAdditionalServices": [],
                }
            )
        total = sum(float(li["price"]["amount"]) * li["quantity"] for li in items)
        forms.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "messageToSeller": None,
                "buyer": {
                    "id": str(rng.randint(1, 10**8)),
                    "email": f"b{i}@allegromail.pl",
                    "login": f"buyer{i}",
                    "firstName": "Jan",
                    "lastName": "Kowalski",
                    "companyName": None,
                    "guest": False,
                    "personalIdentity": None,
                    "phoneNumber": "+48500000000",
                    "preferences": {"language": "pl-PL"},
                    "address": {"street": "Ul. Testowa 1", "city": "Poznań", "postCode": "60-166", "countryCode": "PL"},
                },
                "payment": {
                    "id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "type": "ONLINE",
                    "provider": "P24",
                    "finishedAt": bought,
                    "paidAmount": _money(total),
                    "reconciliation": _money(total),
                },
                "status": "READY_FOR_PROCESSING",
                "fulfillment": {
                    "status": rng.choice(["NEW", "PROCESSING", "SENT"]),
                    "shipmentSummary": {"lineItemsSent": "NONE"},
                },
                "delivery": {
                    "address": {
                        "firstName": "Jan",
                        "lastName": "Kowalski",
                        "street": "Ul. Testowa 1",
                        "city": "Poznań",
                        "zipCode": "60-166",
                        "countryCode": "PL",
                    },
                    "method": {"id": "1fa56f79-4b6a-4821-a6f2-ca9c16d5c925", "name": "Allegro Paczkomaty InPost"},
                    "pickupPoint": None,
                    "cost": _money(8.99),
                    "time": None,
                    "smart": True,
                    "calculatedNumberOfPackages": 1,
                },
                "invoice": {"required": False, "address": None, "dueDate": None},
                "lineItems": items,
                "surcharges": [],
                "discounts": [],
                "note": None,
                "marketplace": {"id": "allegro-pl"},
                "summary": {"totalToPay": _money(total + 8.99)},
                "updatedAt": bought,
                "revision": f"{rng.getrandbits(32):x}",
            }
        )
    return json.dumps({"checkoutForms": forms, "count": count, "totalCount": count}).encode()
