"""Message wording in ru, pl and en. Plain data: render.py decides where each piece goes."""

from __future__ import annotations

LANGUAGES = ("ru", "pl", "en")
DEFAULT_BY_MARKETPLACE = {"wb": "ru", "allegro": "pl"}

TITLES: dict[str, dict[str, str]] = {
    "en": {
        "new_order": "New order",
        "new_order_unpaid": "New order (not paid yet)",
        "cancellation": "Order cancelled",
        "buyout": "Buyout",
        "return": "Return",
        "negative_review": "New review",
        "critical_stock": "Low stock",
        "stock_runout": "Stock running out",
        "shop_needs_reauth": "The shop needs to be connected again",
        "sync_failing": "Sync is failing",
    },
    "ru": {
        "new_order": "Новый заказ",
        "new_order_unpaid": "Новый заказ (ещё не оплачен)",
        "cancellation": "Отмена заказа",
        "buyout": "Выкуп",
        "return": "Возврат",
        "negative_review": "Новый отзыв",
        "critical_stock": "Заканчивается товар",
        "stock_runout": "Товара осталось ненадолго",
        "shop_needs_reauth": "Магазин нужно подключить заново",
        "sync_failing": "Синхронизация не работает",
    },
    "pl": {
        "new_order": "Nowe zamówienie",
        "new_order_unpaid": "Nowe zamówienie (nieopłacone)",
        "cancellation": "Zamówienie anulowane",
        "buyout": "Wykup",
        "return": "Zwrot",
        "negative_review": "Nowa opinia",
        "critical_stock": "Niski stan magazynowy",
        "stock_runout": "Towar wkrótce się skończy",
        "shop_needs_reauth": "Sklep trzeba połączyć ponownie",
        "sync_failing": "Synchronizacja nie działa",
    },
}

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "order": "Order",
        "sale": "Sale",
        "basket": "Basket",
        "total": "Total",
        "for_pay": "To be paid",
        "warehouse": "Warehouse",
        "region": "Region",
        "stock": "Stock",
        "was": "was",
        "days_left": "Days of stock left",
        "sold_30d": "Sold in 30 days",
        "stream": "Stream",
        "since": "Since",
        "error": "Error",
        "reauth": "Connect the shop again to resume syncing.",
        "reason": "Reason",
        "return_id": "Return",
        "more": "more",
        "pcs": "pcs",
    },
    "ru": {
        "order": "Заказ",
        "sale": "Продажа",
        "basket": "Корзина",
        "total": "Сумма",
        "for_pay": "К выплате",
        "warehouse": "Склад",
        "region": "Регион",
        "stock": "Остаток",
        "was": "было",
        "days_left": "Хватит на дней",
        "sold_30d": "Продано за 30 дней",
        "stream": "Поток",
        "since": "С",
        "error": "Ошибка",
        "reauth": "Подключите магазин заново, чтобы синхронизация продолжилась.",
        "reason": "Причина",
        "return_id": "Возврат",
        "more": "ещё",
        "pcs": "шт.",
    },
    "pl": {
        "order": "Zamówienie",
        "sale": "Sprzedaż",
        "basket": "Koszyk",
        "total": "Suma",
        "for_pay": "Do wypłaty",
        "warehouse": "Magazyn",
        "region": "Region",
        "stock": "Stan",
        "was": "było",
        "days_left": "Wystarczy na dni",
        "sold_30d": "Sprzedano w 30 dni",
        "stream": "Strumień",
        "since": "Od",
        "error": "Błąd",
        "reauth": "Połącz sklep ponownie, aby wznowić synchronizację.",
        "reason": "Powód",
        "return_id": "Zwrot",
        "more": "więcej",
        "pcs": "szt.",
    },
}

# WB order feed `cancelType`: why an order was cancelled.
CANCEL_TYPES: dict[str, dict[str, str]] = {
    "en": {
        "app": "cancelled by the buyer",
        "receipt": "refused at pickup",
        "expire": "not picked up in time",
        "other": "technical cancellation",
    },
    "ru": {
        "app": "отменён покупателем",
        "receipt": "отказ при получении",
        "expire": "не забран из пункта выдачи",
        "other": "техническая отмена",
    },
    "pl": {
        "app": "anulowane przez kupującego",
        "receipt": "odmowa przy odbiorze",
        "expire": "nieodebrane w terminie",
        "other": "anulowanie techniczne",
    },
}
# A WB `returnDefective`: the buyer returned the item as faulty.
DEFECTIVE = {"en": "returned as defective", "ru": "возврат по браку", "pl": "zwrot z powodu wady"}

ICONS = {
    "new_order": "🛒",
    "cancellation": "❌",
    "buyout": "✅",
    "return": "↩️",
    "negative_review": "⭐",
    "critical_stock": "📉",
    "stock_runout": "⏳",
    "shop_needs_reauth": "🔑",
    "sync_failing": "⚠️",
}

CURRENCY_SIGNS = {"RUB": "₽", "PLN": "zł", "EUR": "€", "USD": "$", "KZT": "₸", "BYN": "Br"}
