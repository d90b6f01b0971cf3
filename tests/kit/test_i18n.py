"""Accept-Language: q-values rank the tags, q=0 means "not acceptable", spaces around parameters are allowed."""

from __future__ import annotations

import pytest

from app.kit.i18n import pick_locale


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "en"),
        ("zh-CN", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-TW;q=0.9, en;q=0.8", "zh-CN"),
        ("en;q=0.5, zh-CN;q=0.9", "zh-CN"),
        ("en;q=0.5, zh-CN; q=0.1", "en"),
        ("zh-CN;q=0", "en"),
        ("zh-CN;q=0, fr", "en"),
        ("fr, zh-CN;q=0.2", "zh-CN"),
        ("zh-CN;q=abc, en;q=0.1", "en"),
        ("*", "en"),
        ("zh_CN", "zh-CN"),  # WeChat's spelling, as a Mini Program reads it from wx.getSystemInfoSync()
        ("en_US, zh_CN;q=0.5", "en"),
    ],
)
def test_the_locale_follows_the_headers_weights(header: str | None, locale: str) -> None:
    assert pick_locale(header) == locale
