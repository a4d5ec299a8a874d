"""`from_settings` against the real settings class: URLs, client id and User-Agent."""

from __future__ import annotations

from pydantic import SecretStr

from connectors.allegro import AllegroAuth, AllegroClient
from connectors.http import USER_AGENT
from connectors.wildberries import WildberriesClient
from sellerpulse import __version__
from sellerpulse.settings import Settings


async def test_clients_read_the_settings_attribute_names() -> None:
    settings = Settings(
        _env_file=None,
        wb_statistics_url="http://127.0.0.1:9/wb-statistics",
        allegro_client_id="cid",
        allegro_client_secret=SecretStr("csecret"),
    )
    async with (
        WildberriesClient.from_settings(settings) as wb,
        AllegroClient.from_settings(settings) as api,
        AllegroAuth.from_settings(settings) as auth,
    ):
        statistics = wb._hosts["wb_statistics"]._client
        assert str(statistics.base_url) == "http://127.0.0.1:9/wb-statistics/"
        assert str(api._host._client.base_url).rstrip("/") == settings.allegro_api_url
        assert api.client_id == auth.client_id == "cid"
        assert statistics.headers["User-Agent"] == USER_AGENT == f"sellerpulse/{__version__}"
        assert statistics.timeout.connect == 10.0 and statistics.timeout.read == 60.0
