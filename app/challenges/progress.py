"""Pure challenge logic: instances and deadlines, step progress, eligibility. No I/O, unit-tested alone.

A step is a windowless criterion: its state lives in the participation and is evaluated in the
"lifetime" bucket of the evaluator, so only events between joining and the deadline ever reach it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from app.kit.periods import period_bounds, period_key
from app.rules import evaluator as ev
from app.rules.criteria import Criterion, threshold_decimal

ONCE = "once"
UNITS = {"weekly": "week", "monthly": "month"}
#: An event received after the join still counts when it occurred up to this long before the join: the
#: integrator's clock (or a "now" computed before calling join) may run a little behind ours, and
#: `occurred_at` often has whole seconds only. Kept short so a member cannot act first and join afterwards
#: (a POS uploading every few minutes) and still be credited: "only events after joining count". An event
#: that occurred earlier does not count; events received before the join never reach the participation.
JOIN_CLOCK_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class ScheduleSpec:
    type: str
    starts_at: datetime | None
    ends_at: datetime | None
    recurrence: str | None
    time_limit_days: int | None


def instance_at(s: ScheduleSpec, at: datetime, tz: tzinfo) -> tuple[str, datetime | None]:
    """The instance key a member joining at ``at`` enters, and when that instance's period ends."""
    if s.type != "recurring" or s.recurrence is None:
        return ONCE, None
    unit = UNITS[s.recurrence]
    key = period_key(unit, at, tz)
    return key, period_bounds(unit, key, tz)[1]


def deadline_for(s: ScheduleSpec, instance: str, joined_at: datetime, tz: tzinfo) -> datetime | None:
    """The earliest of: the challenge's end, the instance's period end, the member's time limit."""
    candidates: list[datetime] = []
    if s.ends_at is not None:
        candidates.append(s.ends_at)
    if instance != ONCE and s.recurrence is not None:
        candidates.append(period_bounds(UNITS[s.recurrence], instance, tz)[1])
    if s.time_limit_days is not None:
        candidates.append(joined_at + timedelta(days=s.time_limit_days))
    return min(candidates) if candidates else None


def counts_from(s: ScheduleSpec, instance: str, joined_at: datetime, tz: tzinfo) -> datetime:
    """The earliest occurred_at a participation counts: the join less the clock-skew tolerance, but never
    before the challenge starts or before the instance's own period (a weekly instance joined at Monday
    00:01 does not take last Sunday's events)."""
    floor = joined_at - JOIN_CLOCK_SKEW
    if s.starts_at is not None:
        floor = max(floor, min(s.starts_at, joined_at))
    if instance != ONCE and s.recurrence is not None:
        floor = max(floor, min(period_bounds(UNITS[s.recurrence], instance, tz)[0], joined_at))
    return floor


def open_state(s: ScheduleSpec, now: datetime) -> str:
    """"open", "not_started" or "ended" for joining at ``now``."""
    if s.starts_at is not None and now < s.starts_at:
        return "not_started"
    if s.ends_at is not None and now >= s.ends_at:
        return "ended"
    return "open"


# --------------------------------------------------------------------------- steps


def empty_progress(n_steps: int) -> list[dict[str, Any]]:
    return [{"state": ev.EMPTY.to_json(), "done_at": None} for _ in range(n_steps)]


def step_value(c: Criterion, state: ev.CounterState, at: datetime, tz: tzinfo) -> Decimal:
    return ev.value_of(c, {ev.LIFETIME: state}, at, tz)


def num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass(frozen=True)
class StepChange:
    step: int
    current: Decimal
    target: Decimal
    newly_done: bool
    done: bool


def apply_event(
    steps: Sequence[Criterion],
    progress: list[dict[str, Any]],
    event_type: str,
    attributes: Mapping[str, Any],
    at: datetime,
    tz: tzinfo,
    not_before: datetime | None = None,
) -> tuple[list[dict[str, Any]], list[StepChange]]:
    """Fold one event into every open step it matches; returns the new progress and what changed.

    Done steps stay done (a refund does not undo a completed step) and are not updated further. A step is done at
    the event's time, but never before ``not_before`` (the join: an event inside the join's clock-skew grace
    occurred a little earlier).
    """
    done_at = max(at, not_before) if not_before is not None else at
    # Entries are replaced, never changed in place, so a shallow copy is enough (and most events match no
    # step of most challenges: this runs for every active participation of the member).
    new = list(progress)
    changes: list[StepChange] = []
    for i, c in enumerate(steps):
        entry = new[i]
        if entry.get("done_at") or not ev.matches(c, event_type, attributes):
            continue
        before = ev.CounterState.from_json(entry.get("state"))
        after = ev.apply(c, before, at, attributes, tz)
        value = step_value(c, after, at, tz)
        if value == step_value(c, before, at, tz):
            continue  # e.g. a store already visited: nothing a member would see has changed
        target = threshold_decimal(c)
        done = value >= target
        new[i] = {"state": after.to_json(), "done_at": done_at.isoformat() if done else None}
        changes.append(StepChange(step=i, current=value, target=target, newly_done=done, done=done))
    return new, changes


def steps_done(progress: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for p in progress if p.get("done_at"))


def percent(steps: Sequence[Criterion], progress: Sequence[Mapping[str, Any]], at: datetime, tz: tzinfo) -> int:
    """Overall completion, crediting partial progress on open steps (100 only when every step is done)."""
    if not steps:
        return 0
    total = Decimal(0)
    for c, p in zip(steps, progress, strict=False):
        if p.get("done_at"):
            total += 1
        else:
            value = step_value(c, ev.CounterState.from_json(p.get("state")), at, tz)
            # Refunds can take a sum below zero; a step's share stays between nothing and all of it.
            total += min(max(value / threshold_decimal(c), Decimal(0)), Decimal(1))
    pct = int(total * 100 / len(steps))
    return 99 if pct == 100 and steps_done(progress) < len(steps) else pct


# --------------------------------------------------------------------------- eligibility


@dataclass(frozen=True)
class MemberFacts:
    tier: str | None
    segments: Sequence[str]
    points: int
    held_badges: frozenset[str]


def _or_list(values: Sequence[str]) -> str:
    names = [v.replace("_", " ").replace("-", " ").title() for v in values]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def rule_texts(eligibility: Mapping[str, Any], badge_names: Mapping[str, str], locale: str = "en") -> dict[str, str]:
    """Display text for each rule set ("Premium members only", "Requires Engaged Member level"), in English or,
    for `zh-CN`, Chinese (tier, segment and level names are the program's own, shown as they are)."""
    zh = locale == "zh-CN"
    texts: dict[str, str] = {}
    if eligibility.get("tiers"):
        tiers = eligibility["tiers"]
        texts["tier"] = f"仅限{'、'.join(tiers)}会员" if zh else f"{_or_list(tiers)} members only"
    if eligibility.get("segments"):
        segments = eligibility["segments"]
        texts["segment"] = f"仅限{'、'.join(segments)}会员" if zh else f"Only for {_or_list(segments)} members"
    if eligibility.get("min_level"):
        level = eligibility["min_level"]
        texts["min_level"] = f"需达到{level}等级" if zh else f"Requires {level} level"
    if eligibility.get("required_badge"):
        key = eligibility["required_badge"]
        name = badge_names.get(key, key)
        texts["required_badge"] = f"需先获得“{name}”徽章" if zh else f"Requires the {name} badge"
    return texts


def unmet_rules(
    eligibility: Mapping[str, Any],
    member: MemberFacts,
    level_points: Mapping[str, int],
    badge_names: Mapping[str, str],
    locale: str = "en",
) -> list[dict[str, Any]]:
    """The rules the member does not meet, as {rule, required, text}; empty means eligible.

    ``level_points`` maps ladder level names to their points_required; a level no longer on the
    ladder cannot be met (the admin is told on save, members are told here).
    """
    texts = rule_texts(eligibility, badge_names, locale)
    reasons: list[dict[str, Any]] = []
    # Tiers and segments are names a CRM and an admin each spell: "Premium" is the tier "premium".
    tiers = list(eligibility.get("tiers") or [])
    if tiers and (member.tier or "").casefold() not in {t.casefold() for t in tiers}:
        reasons.append({"rule": "tier", "required": tiers, "text": texts["tier"]})
    segments = list(eligibility.get("segments") or [])
    if segments and not {s.casefold() for s in segments} & {s.casefold() for s in member.segments}:
        reasons.append({"rule": "segment", "required": segments, "text": texts["segment"]})
    level = eligibility.get("min_level")
    if level:
        needed = level_points.get(level)
        if needed is None or member.points < needed:
            reasons.append({"rule": "min_level", "required": level, "text": texts["min_level"]})
    badge = eligibility.get("required_badge")
    if badge and badge not in member.held_badges:
        reasons.append({"rule": "required_badge", "required": badge, "text": texts["required_badge"]})
    return reasons
