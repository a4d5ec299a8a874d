"""The bot's own texts in ru, pl and en (notifications come rendered by the API).

`t(lang, key, **values)`: the text in that language, else English; a key missing everywhere is
a bug that tests/bot catch (every language has every key).
"""

from __future__ import annotations

from typing import Any

from bot.texts import en, pl, ru

LANGUAGES = ("ru", "pl", "en")
TEXTS: dict[str, dict[str, str]] = {"en": en.TEXTS, "ru": ru.TEXTS, "pl": pl.TEXTS}


def t(lang: str, key: str, **values: Any) -> str:
    table = TEXTS.get(lang, en.TEXTS)
    text = table.get(key) or en.TEXTS[key]
    return text.format(**values) if values else text


def language_of(person: dict[str, Any] | None, telegram_code: str | None) -> str:
    """The person's chosen language, else their Telegram app's, else English."""
    chosen = (person or {}).get("language")
    if chosen in TEXTS:
        return str(chosen)
    code = (telegram_code or "")[:2].lower()
    return code if code in TEXTS else "en"
