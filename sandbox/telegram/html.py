"""Telegram's HTML parse mode: which tags it takes, and the text a message shows.

Telegram refuses a message whose markup it cannot parse ("can't parse entities"), and counts
the length limits (4096 for a text, 1024 for a caption) on the visible text.
"""

from __future__ import annotations

from html.parser import HTMLParser

ALLOWED = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "tg-spoiler", "span", "blockquote", "tg-emoji",
}  # fmt: skip


class EntityError(ValueError):
    pass


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED:
            raise EntityError(f'Unsupported start tag "{tag}"')
        if tag == "a" and not dict(attrs).get("href"):
            raise EntityError("Can't find end of a URL")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise EntityError(f'Unmatched end tag "{tag}"')
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible_text(text: str, parse_mode: str | None) -> str:
    """The text as shown; raises EntityError when the HTML cannot be parsed."""
    if (parse_mode or "").upper() != "HTML":
        return text
    parser = _Parser()
    try:
        parser.feed(text)
        parser.close()
    except EntityError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything the parser chokes on is the same answer
        raise EntityError(str(exc)) from None
    if parser.open:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{parser.open[-1]}"')
    return "".join(parser.text)
