"""Settings refuse unsafe or malformed values at start-up."""

from __future__ import annotations

import re

import pytest


def test_production_refuses_default_jwt_secret() -> None:
    from pydantic import ValidationError

    from app.config import Settings

    with pytest.raises(ValidationError, match="LAUREL_JWT_SECRET"):
        Settings(env="production")
    Settings(env="production", jwt_secret="x" * 40, wechat_app_id="wx1234567890abcdef", wechat_app_secret="s" * 32)


def test_malformed_quiet_hours_refused_at_start_up() -> None:
    from pydantic import ValidationError

    from app.config import Settings

    with pytest.raises(ValidationError, match="quiet hours"):
        Settings(quiet_hours="late evening")
    assert Settings(quiet_hours="").quiet_hours == ""


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("database_url", "mysql://x/y", "postgresql+asyncpg"),
        ("database_url", "", "postgresql+asyncpg"),
        ("database_url", "postgresql+psycopg2://h/db", "postgresql+asyncpg"),
        ("wechat_api_base_url", "not a url", "http"),
        ("log_level", "LOUD", "DEBUG"),
        # An unknown zone stopped start-up with a bare ZoneInfoNotFoundError traceback, not a settings error.
        ("timezone", "Mars/Base", "unknown time zone"),
        ("timezone", "", "unknown time zone"),
        ("timezone", "Asia", "unknown time zone"),  # a directory of the zone database: IsADirectoryError
        ("jwt_ttl_seconds", 10**12, "less than or equal"),
        # Icon and share URLs are this base + a path: without a scheme they were relative ("cdn.example.com/v1/…").
        ("public_base_url", "cdn.example.com", "absolute http:// or https://"),
        ("public_base_url", "/static", "absolute http:// or https://"),
    ],
)
def test_settings_that_could_not_work_are_refused_at_start_up(field: str, value: object, message: str) -> None:
    from pydantic import ValidationError

    from app.config import Settings

    with pytest.raises(ValidationError, match=re.escape(message)):
        Settings(**{field: value})


def test_a_bare_database_url_gets_the_async_driver() -> None:
    from app.config import Settings

    assert Settings(database_url="postgresql://u@h:5432/db").database_url == "postgresql+asyncpg://u@h:5432/db"
    assert Settings(database_url="postgres://u@h/db").database_url == "postgresql+asyncpg://u@h/db"
    assert Settings(database_url="sqlite:///./x.db").database_url == "sqlite+aiosqlite:///./x.db"
    assert Settings(log_level="warning").log_level == "WARNING"


def test_an_absolute_public_base_url_or_none_is_accepted() -> None:
    from app.config import Settings

    assert Settings(public_base_url="").public_base_url == ""
    assert Settings(public_base_url="https://cdn.example.com/").public_base_url == "https://cdn.example.com/"


@pytest.mark.parametrize("field", ["wechat_app_id", "wechat_app_secret"])
def test_production_refuses_the_placeholder_wechat_credentials(field: str) -> None:
    """The defaults are development placeholders: in production every WeChat login would be refused by WeChat
    (40013/40125, a 503 to the member) and every message unsent, so start-up stops instead, as for the JWT
    secret."""
    from pydantic import ValidationError

    from app.config import Settings

    real = {"wechat_app_id": "wx1234567890abcdef", "wechat_app_secret": "0123456789abcdef0123456789abcdef"}
    del real[field]
    with pytest.raises(ValidationError, match=f"LAUREL_{field.upper()}"):
        Settings(env="production", jwt_secret="x" * 40, **real)
    Settings(env="production", jwt_secret="x" * 40, wechat_app_id="wx1234567890abcdef",
             wechat_app_secret="0123456789abcdef0123456789abcdef")
