"""Per-app singletons handed to endpoints (settings, WeChat gateway)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.integrations.wechat.gateway import WeChatGateway


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _wechat(request: Request) -> WeChatGateway:
    return request.app.state.wechat


SettingsDep = Annotated[Settings, Depends(_settings)]
WeChatDep = Annotated[WeChatGateway, Depends(_wechat)]
