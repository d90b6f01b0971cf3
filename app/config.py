"""Settings, read from the environment with the LAUREL_ prefix (documented in README.md)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_JWT_SECRET = "dev-insecure-jwt-secret-change-me"
# Development placeholders: WeChat refuses them (40013 invalid appid, 40125 invalid appsecret).
DEFAULT_WECHAT_APP_ID = "wx-dev-appid"
DEFAULT_WECHAT_APP_SECRET = "wx-dev-secret"


class Settings(BaseSettings):
    """One settings object for the process; every field is a LAUREL_* variable."""

    model_config = SettingsConfigDict(env_prefix="LAUREL_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./laurel.db"
    timezone: str = "Asia/Shanghai"
    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60, le=366 * 24 * 3600)
    admin_api_key: str | None = None
    wechat_app_id: str = DEFAULT_WECHAT_APP_ID
    wechat_app_secret: str = DEFAULT_WECHAT_APP_SECRET
    wechat_api_base_url: str = "https://api.weixin.qq.com/"
    wechat_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    icon_upload_dir: str = "./var/icons"
    icon_max_bytes: int = Field(default=512 * 1024, ge=1024)
    public_base_url: str = ""
    # WeChat's share card shows PNG or JPEG only, and the built-in icons are SVG: a badge with such an icon is
    # shared with this image (an absolute URL), when set.
    share_image_url: str = ""
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    db_pool_size: int = Field(default=20, ge=1)
    # Group-commit transactions of single events in flight at once per process (PostgreSQL; SQLite: 1).
    ingest_pipeline: int = Field(default=2, ge=1, le=16)
    worker_enabled: bool = True
    quiet_hours: str = "22:00-08:00"
    challenge_expiring_hours: int = Field(default=24, ge=1, le=24 * 30)
    rank_improved_min_places: int = Field(default=5, ge=1)
    wechat_max_attempts: int = Field(default=12, ge=1, le=50)
    wechat_dispatch_concurrency: int = Field(default=4, ge=1, le=64)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_retry_hours: float = Field(default=24.0, gt=0, le=24 * 7)
    # Webhooks to loopback, private, link-local (cloud metadata) or other non-public addresses; unset: allowed in
    # development and test (a local receiver), refused in production (see webhooks.addresses).
    webhook_private_hosts: bool | None = None
    outbox_retention_days: int = Field(default=7, ge=1)
    leaderboard_cache_seconds: float = Field(default=5.0, ge=0, le=300)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        # An unknown zone is a ZoneInfoNotFoundError (a KeyError); a region such as "Asia", a directory of the zone
        # database, an OSError (IsADirectoryError).
        try:
            ZoneInfo(value)  # so a typo fails at start-up
        except (ValueError, KeyError, OSError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Asia/Shanghai'") from exc
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_format(cls, value: str) -> str:
        from app.notifications.quiet import parse

        parse(value)  # a malformed window fails at start-up, not on every dispatcher run
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        """The same code serves SQLite (the embedded default) and PostgreSQL, through their async drivers; a
        bare `postgresql://` gets asyncpg, and anything else fails at start-up, not on the first request."""
        scheme, sep, rest = value.partition("://")
        drivers = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}
        scheme = drivers.get(scheme, scheme)
        if not sep or scheme not in drivers.values():
            raise ValueError("must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")
        return f"{scheme}://{rest}"

    @field_validator("public_base_url")
    @classmethod
    def _absolute_base(cls, value: str) -> str:
        """Icon and share URLs are this base + a path: without a scheme they would be relative, and broken."""
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be empty or an absolute http:// or https:// URL (e.g. https://cdn.example.com)")
        return value

    @field_validator("share_image_url")
    @classmethod
    def _absolute_image(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http:// or https:// URL of a PNG or JPEG image")
        return value

    @field_validator("wechat_api_base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env == "production":
            if self.jwt_secret == DEFAULT_JWT_SECRET or len(self.jwt_secret) < 32:
                raise ValueError(
                    "LAUREL_JWT_SECRET must be set to a random value of at least 32 characters in production"
                )
            if self.admin_api_key is not None and len(self.admin_api_key) < 24:
                raise ValueError("LAUREL_ADMIN_API_KEY must be at least 24 characters in production")
            # With the placeholders every member login would be a 503 and every WeChat message unsent.
            for name, value, default in (("LAUREL_WECHAT_APP_ID", self.wechat_app_id, DEFAULT_WECHAT_APP_ID),
                                         ("LAUREL_WECHAT_APP_SECRET", self.wechat_app_secret,
                                          DEFAULT_WECHAT_APP_SECRET)):
                if not value.strip() or value == default:
                    raise ValueError(f"{name} must be set to the Mini Program's own value in production")
        return self

    @property
    def webhooks_reach_private(self) -> bool:
        return self.webhook_private_hosts if self.webhook_private_hosts is not None else self.env != "production"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
