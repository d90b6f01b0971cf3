"""Per-app singletons handed to endpoints (settings, WeChat gateway).

Dependencies are `async def` even when they do not await: FastAPI runs plain `def` ones on a thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.integrations.wechat.gateway import WeChatGateway


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _wechat(request: Request) -> WeChatGateway:
    return request.app.state.wechat


SettingsDep = Annotated[Settings, Depends(_settings)]
WeChatDep = Annotated[WeChatGateway, Depends(_wechat)]
