"""WeChat value rules and quiet hours: pure functions, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.config import Settings
from app.notifications import fields, quiet
from app.notifications.kinds import SUMMARIES, summary

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("thing1", "首次到店", "首次到店"),
        ("thing1", "一" * 25, "一" * 19 + "…"),
        ("short_thing2", "abcdefg", "abcde"),
        ("number3", "12.5", "12.5"),
        ("letter4", "abc", "abc"),
        ("symbol5", "★★", "★★"),
        ("character_string6", "CODE-" + "9" * 40, ("CODE-" + "9" * 40)[:32]),
        ("time7", "2026-11-24 21:30", "2026-11-24 21:30"),
        ("time7", "15:01", "15:01"),
        ("time7", "2019年10月1日 15:01", "2019年10月1日 15:01"),
        ("date8", "2019年10月1日", "2019年10月1日"),
        ("date8", "2026-11-24 ~ 2026-11-30", "2026-11-24 ~ 2026-11-30"),
        ("amount9", "¥100.00", "¥100.00"),
        ("phone_number10", "+86-0766-66888866", "+86-0766-66888866"),
        ("car_number11", "粤A8Z888挂", "粤A8Z888挂"),
        ("name12", "张三", "张三"),
        ("name12", "李" * 12, "李" * 9 + "…"),
        ("phrase13", "配送中", "配送中"),
    ],
)
def test_valid_values_pass_or_are_truncated_where_wechat_allows(key: str, value: str, expected: str) -> None:
    assert fields.clean(key, value) == expected


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("thing1", ""),
        ("number2", "12a"),
        ("number2", "1" * 33),
        ("letter3", "ab1"),
        ("symbol4", "abc"),
        ("character_string5", "中文"),
        ("time6", "tomorrow"),
        ("date7", "11/24"),
        ("amount8", "100 dollars"),
        ("phone_number9", "call me"),
        ("phrase10", "配送中了没有呢"),
        ("phrase10", "ok"),
        ("colour1", "red"),
        ("thing", "no number"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(key: str, value: str) -> None:
    with pytest.raises(fields.FieldInvalid) as info:
        fields.clean(key, value)
    assert info.value.key == key and f"data.{key}" in str(info.value)


def test_render_fills_placeholders_and_checks_each_field() -> None:
    out = fields.render({"thing1": "{badge_name}", "number2": "{points}"}, {"badge_name": "首胜", "points": 10})
    assert out == {"thing1": "首胜", "number2": "10"}
    with pytest.raises(fields.FieldInvalid):
        fields.render({"thing1": "{missing}"}, {})
    with pytest.raises(fields.FieldInvalid):
        fields.check_format("thing1", "{unclosed")


@pytest.mark.parametrize(
    ("spec", "local", "until"),
    [
        ("22:00-08:00", "2026-11-24 23:30", "2026-11-25 08:00"),
        ("22:00-08:00", "2026-11-25 03:00", "2026-11-25 08:00"),
        ("22:00-08:00", "2026-11-25 08:00", None),
        ("22:00-08:00", "2026-11-25 21:59", None),
        ("12:00-14:00", "2026-11-25 13:00", "2026-11-25 14:00"),
        ("", "2026-11-25 23:00", None),
    ],
)
def test_quiet_hours(spec: str, local: str, until: str | None) -> None:
    now = datetime.fromisoformat(local).replace(tzinfo=TZ).astimezone(UTC)
    got = quiet.quiet_until(now, spec, TZ)
    assert (got.astimezone(TZ).strftime("%Y-%m-%d %H:%M") if got else None) == until


def test_bad_quiet_hours_are_refused() -> None:
    with pytest.raises(ValueError):
        quiet.parse("late")


def test_bundle_summaries_fit_a_thing_field() -> None:
    assert summary("badge_unlocked", 3, "zh_CN") == "你解锁了3枚徽章"
    assert summary("badge_unlocked", 3, "en_US") == "3 badges unlocked"
    kinds = list(SUMMARIES["en"])
    assert all(len(summary(k, 99, lang)) <= 20 for k in kinds for lang in ("zh_CN", "en"))


@pytest.mark.parametrize("spec", ["22:00+08:00-08:00", "22:00Z-08:00"])
def test_quiet_hours_with_an_offset_are_refused_at_start_up(spec: str) -> None:
    """Quiet hours are program time: "22:00+08:00" parsed as an aware time, so the setting was accepted and then
    every dispatcher run failed comparing it with the clock (TypeError), and no WeChat message was ever sent."""
    with pytest.raises(ValueError, match="quiet hours"):
        quiet.parse(spec)
    with pytest.raises(ValueError):
        Settings(quiet_hours=spec)
