"""Notification kinds: where they come from, the params they carry, and their texts in zh-CN and en."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

Kind = Literal[
    "badge_unlocked",
    "level_reached",
    "challenge_available",
    "challenge_completed",
    "challenge_expiring",
    "challenge_expired",
    "rank_improved",
    "voucher_issued",
]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]

# Outbox kinds (dotted, written by the engine, challenges and vouchers) that become member notifications.
FROM_OUTBOX: dict[str, str] = {
    "badge.awarded": "badge_unlocked",
    "level.reached": "level_reached",
    "challenge.completed": "challenge_completed",
    "challenge.expired": "challenge_expired",
    "challenge.published": "challenge_available",
    "leaderboard.rank_improved": "rank_improved",
    "voucher.issued": "voucher_issued",
}

# The param that names the thing a notification is about; a bundle replaces it with a summary.
TITLE_PARAM: dict[str, str] = {
    "badge_unlocked": "badge_name",
    "level_reached": "level",
    "challenge_available": "challenge_name",
    "challenge_completed": "challenge_name",
    "challenge_expiring": "challenge_name",
    "challenge_expired": "challenge_name",
    "rank_improved": "board_name",
    "voucher_issued": "voucher_name",
}
# Where the title may be found in a producer's payload, first match wins.
_TITLE_SOURCES: dict[str, tuple[str, ...]] = {
    "badge_name": ("badge_name", "badge"),
    "level": ("level", "level_name"),
    "challenge_name": ("challenge_name", "title", "name", "challenge", "challenge_key"),
    "board_name": ("board_name", "board", "board_key"),
    "voucher_name": ("voucher_name", "title", "name", "voucher", "code"),
}

# The params each kind's notifications carry, as their producers write them (see the payloads in the engine,
# challenges, vouchers, the leaderboards' rank check and the scheduler), plus `time` and `date` (when it was
# created, program time). A template field naming anything else renders empty, and WeChat refuses an empty
# value: tests/notifications/test_template_params.py checks this table against real notifications.
PARAMS: dict[str, frozenset[str]] = {
    kind: frozenset({"time", "date", *names})
    for kind, names in {
        "badge_unlocked": ("user_id", "badge", "badge_name", "award_id", "points", "source", "awarded_at",
                           "earned_at"),
        "level_reached": ("user_id", "rank", "level", "points_required", "reached_at"),
        "challenge_available": ("challenge", "challenge_name", "title", "ends_at"),
        "challenge_completed": ("user_id", "challenge", "challenge_name", "title", "instance", "participation_id",
                                "bonus_points", "badge", "voucher", "completed_at"),
        "challenge_expiring": ("challenge", "challenge_name", "title", "instance", "participation_id", "deadline",
                               "steps_done", "steps_total"),
        "challenge_expired": ("user_id", "challenge", "challenge_name", "title", "instance", "participation_id",
                              "steps_done", "steps_total", "deadline", "expired_at"),
        "rank_improved": ("user_id", "board", "board_name", "period", "rank", "previous_rank", "places", "score"),
        "voucher_issued": ("user_id", "voucher", "voucher_name", "name", "face_value", "code", "member_voucher_id",
                           "expires_at", "source_type", "source_id"),
    }.items()
}


def unknown_placeholders(kind: str, fields: dict[str, str]) -> list[dict[str, str]]:
    """Template fields naming a param the kind does not carry: `{field, message}` warnings for the admin."""
    known = PARAMS.get(kind, frozenset())
    out = []
    for key, fmt in fields.items():
        for name in _PLACEHOLDER.findall(fmt):
            if name not in known:
                out.append({"field": f"fields.{key}",
                            "message": f"{{{name}}} is not a param of {kind}, so it renders empty (and WeChat refuses "
                                       f"an empty value); its params are {', '.join(sorted(known))}"})
    return out


Locale = Literal["en", "zh-CN"]
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "zh-CN": {
        "badge_unlocked": ("徽章解锁", "你获得了「{badge_name}」徽章"),
        "level_reached": ("等级提升", "恭喜升到「{level}」"),
        "challenge_available": ("新挑战", "新挑战「{challenge_name}」已开启，快来参加"),
        "challenge_completed": ("挑战完成", "你完成了挑战「{challenge_name}」"),
        "challenge_expiring": ("挑战即将结束", "挑战「{challenge_name}」将于 {deadline} 结束，抓紧完成"),
        "challenge_expired": ("挑战已结束", "挑战「{challenge_name}」已结束，下期再来挑战吧"),
        "rank_improved": ("排名上升", "你在「{board_name}」升至第 {rank} 名"),
        "voucher_issued": ("获得优惠券", "你获得了「{voucher_name}」"),
    },
    "en": {
        "badge_unlocked": ("Badge unlocked", "You unlocked the “{badge_name}” badge"),
        "level_reached": ("Level up", "You reached level “{level}”"),
        "challenge_available": ("New challenge", "A new challenge is open: “{challenge_name}”"),
        "challenge_completed": ("Challenge completed", "You completed “{challenge_name}”"),
        "challenge_expiring": ("Challenge ending soon", "“{challenge_name}” ends {deadline}: finish it in time"),
        "challenge_expired": ("Challenge ended", "“{challenge_name}” has ended; try again next time"),
        "rank_improved": ("You moved up", "You are now #{rank} on “{board_name}”"),
        "voucher_issued": ("Voucher issued", "You received “{voucher_name}”"),
    },
}
# Bundle summaries by WeChat template language family (zh_* → Chinese, anything else → English). They usually land
# in a `thing` field, which WeChat caps at 20 characters: "You unlocked 12 badges" (22) would be cut mid-word, so
# the English ones are shorter ("12 badges unlocked").
SUMMARIES: dict[str, dict[str, str]] = {
    "zh": {
        "badge_unlocked": "你解锁了{count}枚徽章",
        "level_reached": "你连升{count}级",
        "challenge_available": "{count}个新挑战已开启",
        "challenge_completed": "你完成了{count}个挑战",
        "challenge_expiring": "{count}个挑战即将结束",
        "challenge_expired": "{count}个挑战已结束",
        "rank_improved": "你在{count}个榜单排名上升",
        "voucher_issued": "你获得了{count}张优惠券",
    },
    "en": {
        "badge_unlocked": "{count} badges unlocked",
        "level_reached": "Up {count} levels",
        "challenge_available": "{count} new challenges",
        "challenge_completed": "{count} challenges done",
        "challenge_expiring": "{count} ending soon",
        "challenge_expired": "{count} challenges ended",
        "rank_improved": "Up on {count} boards",
        "voucher_issued": "{count} vouchers for you",
    },
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def local_time(value: datetime, tz: ZoneInfo) -> str:
    """The format WeChat's `time`/`date` fields accept, in program time: 2026-11-24 21:30."""
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _is_time_param(key: str) -> bool:
    """The payload keys producers fill with an instant (`awarded_at`, `ends_at`, `deadline`…): only these are shown
    in program time. Other text that merely looks like one (a member's external id may be
    "2026-01-01T00:00:00-01:00") is kept as it is."""
    return key.endswith("_at") or key == "deadline"


def _maybe_time(key: str, value: Any, tz: ZoneInfo) -> Any:
    if _is_time_param(key) and isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return local_time(parsed, tz)
        except (ValueError, OverflowError):  # not a time, or one whose program-time form is beyond year 9999
            return value
    return value


def build_params(kind: str, payload: dict[str, Any], created_at: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """Params a notification keeps for its texts and template fields (scalars only, times in program time)."""
    params: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, str | int | float | bool) or value is None:
            params[key] = _maybe_time(key, value, tz)
    title = TITLE_PARAM[kind]
    if params.get(title) in (None, ""):
        for source in _TITLE_SOURCES.get(title, ()):
            if params.get(source) not in (None, ""):
                params[title] = params[source]
                break
    if kind == "badge_unlocked":
        params.setdefault("earned_at", params.get("awarded_at") or local_time(created_at, tz))
    params["time"] = local_time(created_at, tz)
    params["date"] = created_at.astimezone(tz).strftime("%Y-%m-%d")
    return params


def fill(fmt: str, params: dict[str, Any]) -> str:
    """Substitute {name} placeholders; a missing param renders as empty."""
    return _PLACEHOLDER.sub(lambda m: "" if params.get(m.group(1)) is None else str(params[m.group(1)]), fmt)


def inbox_text(kind: str, params: dict[str, Any], locale: str) -> tuple[str, str]:
    """Title and body of an inbox entry in the reader's language (names use their translation if known)."""
    texts = TEXTS["zh-CN" if locale == "zh-CN" else "en"]
    title_fmt, body_fmt = texts.get(kind, (kind, ""))
    localized = dict(params)
    names = params.get("names")
    if isinstance(names, dict) and names.get(locale):
        localized[TITLE_PARAM.get(kind, "")] = names[locale]
    return fill(title_fmt, localized), fill(body_fmt, localized)


def summary(kind: str, count: int, template_lang: str) -> str:
    """"You unlocked 3 badges" in the template's language (zh_CN/zh_TW/zh_HK → Chinese)."""
    family = "zh" if template_lang.lower().startswith("zh") else "en"
    return fill(SUMMARIES[family].get(kind, "{count}"), {"count": count})
