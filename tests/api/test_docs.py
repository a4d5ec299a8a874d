"""/docs and /redoc render offline: every script, style and icon they load is served by the app."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_pages_load_nothing_from_outside(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        # Swagger's page names its files in a script block; Redoc's in a <script src>.
        urls = set(re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html.text))
        assert urls, html.text
        assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100 or url.endswith(".json") or "oauth2" in url
