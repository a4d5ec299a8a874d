from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sellerpulse.settings import SettingsError, load_settings


def test_defaults_point_at_the_real_hosts(tmp_path: Path) -> None:
    s = load_settings(sellerpulse_data_dir=tmp_path, _env_file=None)
    assert s.allegro_auth_url == "https://allegro.pl"
    assert s.allegro_api_url == "https://api.allegro.pl"
    assert s.wb_statistics_url == "https://statistics-api.wildberries.ru"
    assert s.wb_analytics_url == "https://seller-analytics-api.wildberries.ru"


def test_allegro_env_switches_allegro_hosts_only(tmp_path: Path) -> None:
    s = load_settings(sellerpulse_data_dir=tmp_path, allegro_env="sandbox", _env_file=None)
    assert s.allegro_auth_url == "https://allegro.pl.allegrosandbox.pl"
    assert s.allegro_api_url == "https://api.allegro.pl.allegrosandbox.pl"
    assert s.wb_content_url == "https://content-api.wildberries.ru"


def test_explicit_base_url_wins_and_loses_trailing_slash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLEGRO_API_URL", "http://127.0.0.1:9000/allegro-api/")
    s = load_settings(sellerpulse_data_dir=tmp_path, allegro_env="sandbox", _env_file=None)
    assert s.allegro_api_url == "http://127.0.0.1:9000/allegro-api"
    assert s.allegro_auth_url == "https://allegro.pl.allegrosandbox.pl"


def test_bad_values_name_the_setting_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WB_FEEDBACKS_URL", "ftp://nope-secretish")
    monkeypatch.setenv("ALLEGRO_ENV", "staging")
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None)
    message = str(err.value)
    assert "WB_FEEDBACKS_URL" in message
    assert "ALLEGRO_ENV" in message
    assert "nope-secretish" not in message


def test_database_url_forms(tmp_path: Path) -> None:
    for raw in ("postgres://u:p@h:5432/db", "postgresql://u:p@h:5432/db"):
        s = load_settings(sellerpulse_data_dir=tmp_path, database_url=raw, _env_file=None)
        assert s.sqlalchemy_url == "postgresql+psycopg://u:p@h:5432/db"
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings(database_url="mysql://u@h/db", _env_file=None)


def test_production_requires_a_secret_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SELLERPULSE_SECRET_KEY", raising=False)
    with pytest.raises(SettingsError, match="SELLERPULSE_SECRET_KEY"):
        load_settings(sellerpulse_env="production", sellerpulse_data_dir=tmp_path, _env_file=None)
    assert not (tmp_path / "secret.key").exists()


def test_local_mode_generates_the_key_once_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SELLERPULSE_SECRET_KEY", raising=False)
    first = load_settings(sellerpulse_data_dir=tmp_path, _env_file=None).secret_keys()
    second = load_settings(sellerpulse_data_dir=tmp_path, _env_file=None).secret_keys()
    assert first == second and len(first) == 1
    mode = stat.S_IMODE((tmp_path / "secret.key").stat().st_mode)
    assert mode == 0o600


def test_old_keys_follow_the_current_one(tmp_path: Path) -> None:
    s = load_settings(
        sellerpulse_data_dir=tmp_path, sellerpulse_secret_key="new", sellerpulse_old_secret_keys="a, b", _env_file=None
    )
    assert s.secret_keys() == ["new", "a", "b"]


def test_repr_hides_secrets(tmp_path: Path) -> None:
    s = load_settings(
        sellerpulse_data_dir=tmp_path,
        sellerpulse_secret_key="k-very-secret",
        allegro_client_secret="c-very-secret",
        database_url="postgresql://u:pw-very-secret@h/db",
        _env_file=None,
    )
    text = repr(s) + str(s.model_dump())
    for secret in ("k-very-secret", "c-very-secret", "pw-very-secret"):
        assert secret not in text


def test_scaled_rate_limits_are_refused_in_production() -> None:
    """MARKETPLACE_RATE_SCALE is for sandboxes: in production it would break the real limits."""
    with pytest.raises(SettingsError, match="MARKETPLACE_RATE_SCALE"):
        load_settings(sellerpulse_env="production", sellerpulse_secret_key="k", marketplace_rate_scale=60)
    assert load_settings(marketplace_rate_scale=60).marketplace_rate_scale == 60
