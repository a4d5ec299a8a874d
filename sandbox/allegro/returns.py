"""Allegro customer returns of the order model (a picked-up order coming back, +5 days)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.timefmt import utc_z

if TYPE_CHECKING:
    from sandbox.allegro.orders import AllegroOrderModel


def customer_return(model: AllegroOrderModel, k: int, created: int) -> dict[str, Any]:
    """Form k's return, created at `created` (its return stage)."""
    item = model.line_items_at(k, created)[0]
    buyer = model.buyer(k)
    return {
        "id": model.return_id(k),
        "createdAt": utc_z(created, millis=True),
        "referenceNumber": f"ZW-{model.shop.index}-{k:08d}",
        "orderId": model.form_id_at(k, created),
        "buyer": {"email": buyer["email"], "login": buyer["login"]},
        "items": [
            {
                "offerId": item["offer"]["id"],
                "quantity": 1,
                "name": item["offer"]["name"],
                "price": item["price"],
                "url": f"https://allegro.pl/oferta/{item['offer']['id']}",
                "reason": {"type": "DONT_LIKE_IT", "userComment": "Nie pasuje"},
            }
        ],
        "refund": {
            "bankAccount": {
                "owner": f"{buyer['firstName']} {buyer['lastName']}",
                "accountNumber": "61109010140000071219812874",
                "iban": "PL61109010140000071219812874",
                "swift": "WBKPPLPP",
            }
        },
        "parcels": [
            {
                "createdAt": utc_z(created + 3600, millis=True),
                "waybill": f"6{k:023d}",
                "carrierId": "INPOST",
                "sender": {"phoneNumber": buyer["phoneNumber"]},
            }
        ],
    }
