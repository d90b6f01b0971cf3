"""WeChat Mini Program server API behind a typed gateway; import from here, never from wechatpy."""

from app.integrations.wechat.errors import (
    HighRiskUser,
    InvalidCode,
    RateLimited,
    WeChatError,
    WeChatUnavailable,
)
from app.integrations.wechat.gateway import WeChatGateway, WeChatSession

__all__ = [
    "HighRiskUser",
    "InvalidCode",
    "RateLimited",
    "WeChatError",
    "WeChatGateway",
    "WeChatSession",
    "WeChatUnavailable",
]
