"""The pure challenge core: instances, deadlines, step progress and eligibility, without a database."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from app.challenges import progress as prog
from app.challenges.schemas import ChallengeCreate, StepIn
from app.rules.criteria import Criterion

SH = ZoneInfo("Asia/Shanghai")


def at(s: str) -> datetime:
    return datetime.fromisoformat(s)


def spec(**kw: object) -> prog.ScheduleSpec:
    base: dict[str, object] = {"type": "one_time", "starts_at": None, "ends_at": None, "recurrence": None,
                               "time_limit_days": None}
    base.update(kw)
    return prog.ScheduleSpec(**base)  # type: ignore[arg-type]


def test_weekly_instance_follows_the_china_week() -> None:
    s = spec(type="recurring", recurrence="weekly")
    assert prog.instance_at(s, at("2026-11-22T23:59:00+08:00"), SH)[0] == "2026-W47"
    assert prog.instance_at(s, at("2026-11-23T00:00:00+08:00"), SH)[0] == "2026-W48"
    # 2026-11-22 16:30 UTC is already Monday in Shanghai.
    assert prog.instance_at(s, at("2026-11-22T16:30:00+00:00"), SH)[0] == "2026-W48"


def test_deadline_is_the_earliest_of_end_period_and_time_limit() -> None:
    joined = at("2026-11-18T10:00:00+08:00")
    weekly = spec(type="recurring", recurrence="weekly")
    assert prog.deadline_for(weekly, "2026-W47", joined, SH) == at("2026-11-23T00:00:00+08:00")
    limited = spec(time_limit_days=7)
    assert prog.deadline_for(limited, prog.ONCE, joined, SH) == joined + timedelta(days=7)
    ends = spec(time_limit_days=7, ends_at=at("2026-11-20T00:00:00+08:00"))
    assert prog.deadline_for(ends, prog.ONCE, joined, SH) == at("2026-11-20T00:00:00+08:00")
    assert prog.deadline_for(spec(), prog.ONCE, joined, SH) is None


def test_counts_from_allows_clock_skew_but_not_before_the_instance_or_start() -> None:
    joined = at("2026-11-18T10:00:00.123456+08:00")
    assert prog.counts_from(spec(), prog.ONCE, joined, SH) == joined - timedelta(seconds=60)
    # A weekly instance joined just after Monday 00:00 does not take last Sunday's events.
    weekly = spec(type="recurring", recurrence="weekly")
    monday = at("2026-11-23T00:00:30+08:00")
    assert prog.counts_from(weekly, "2026-W48", monday, SH) == at("2026-11-23T00:00:00+08:00")
    # Nor does a challenge take events from before it starts.
    starts = spec(starts_at=at("2026-11-18T09:59:30+08:00"))
    assert prog.counts_from(starts, prog.ONCE, joined, SH) == at("2026-11-18T09:59:30+08:00")


def test_open_state() -> None:
    s = spec(starts_at=at("2026-12-01T00:00:00+08:00"), ends_at=at("2026-12-31T00:00:00+08:00"))
    assert prog.open_state(s, at("2026-11-30T23:00:00+08:00")) == "not_started"
    assert prog.open_state(s, at("2026-12-05T00:00:00+08:00")) == "open"
    assert prog.open_state(s, at("2026-12-31T00:00:00+08:00")) == "ended"


def test_steps_progress_independently_and_stay_done() -> None:
    steps = [
        Criterion.model_validate(
            {"event": "visit", "aggregate": "count_distinct", "field": "store_id", "threshold": 2}
        ),
        Criterion.model_validate({"event": "purchase", "aggregate": "sum", "field": "amount", "threshold": 100}),
    ]
    p = prog.empty_progress(2)
    t = at("2026-11-20T10:00:00+08:00")
    p, ch = prog.apply_event(steps, p, "visit", {"store_id": "A"}, t, SH)
    assert [(c.step, int(c.current), c.done) for c in ch] == [(0, 1, False)]
    p, ch = prog.apply_event(steps, p, "visit", {"store_id": "A"}, t, SH)
    assert ch == []  # same store: nothing changes
    p, ch = prog.apply_event(steps, p, "visit", {"store_id": "B"}, t, SH)
    assert ch[0].newly_done and prog.steps_done(p) == 1
    p, ch = prog.apply_event(steps, p, "visit", {"store_id": "C"}, t, SH)
    assert ch == []  # done steps are not advanced any more
    p, ch = prog.apply_event(steps, p, "purchase", {"amount": 120}, t, SH)
    assert prog.steps_done(p) == 2
    p2, ch = prog.apply_event(steps, p, "purchase", {"amount": -120}, t, SH)
    assert ch == [] and prog.steps_done(p2) == 2  # a refund does not undo a done step


def test_percent_counts_partial_progress() -> None:
    steps = [Criterion.model_validate({"event": "post", "threshold": 4})]
    p = prog.empty_progress(1)
    t = at("2026-11-20T10:00:00+08:00")
    assert prog.percent(steps, p, t, SH) == 0
    p, _ = prog.apply_event(steps, p, "post", {}, t, SH)
    assert prog.percent(steps, p, t, SH) == 25


def test_a_refund_below_zero_counts_as_no_progress_not_as_negative_percent() -> None:
    spend = Criterion.model_validate({"event": "purchase", "aggregate": "sum", "field": "amount", "threshold": 1000})
    posts = Criterion.model_validate({"event": "post", "threshold": 2})
    p = prog.empty_progress(2)
    t = at("2026-11-20T10:00:00+08:00")
    p, _ = prog.apply_event([spend, posts], p, "purchase", {"amount": -500}, t, SH)
    assert prog.percent([spend, posts], p, t, SH) == 0
    p, _ = prog.apply_event([spend, posts], p, "post", {}, t, SH)
    assert prog.percent([spend, posts], p, t, SH) == 25  # the refund does not pull the other step down


def facts(**kw: object) -> prog.MemberFacts:
    base: dict[str, object] = {"tier": None, "segments": [], "points": 0, "held_badges": frozenset()}
    base.update(kw)
    return prog.MemberFacts(**base)  # type: ignore[arg-type]


LEVELS = {"Engaged Member": 50}


@pytest.mark.parametrize(
    ("eligibility", "member", "rules"),
    [
        ({}, facts(), []),
        ({"tiers": ["premium"]}, facts(tier="premium"), []),
        ({"tiers": ["premium"]}, facts(tier="basic"), ["tier"]),
        ({"tiers": ["premium"]}, facts(tier="Premium"), []),  # a CRM's capital is the same tier
        ({"segments": ["VIP"]}, facts(segments=["vip"]), []),
        ({"segments": ["vip", "staff"]}, facts(segments=["staff"]), []),
        ({"segments": ["vip"]}, facts(segments=["staff"]), ["segment"]),
        ({"min_level": "Engaged Member"}, facts(points=49), ["min_level"]),
        ({"min_level": "Engaged Member"}, facts(points=50), []),
        ({"min_level": "Gone Level"}, facts(points=10_000), ["min_level"]),
        ({"required_badge": "pioneer"}, facts(held_badges=frozenset({"pioneer"})), []),
        ({"required_badge": "pioneer", "tiers": ["premium"]}, facts(), ["tier", "required_badge"]),
    ],
)
def test_eligibility_rules(eligibility: dict[str, object], member: prog.MemberFacts, rules: list[str]) -> None:
    reasons = prog.unmet_rules(eligibility, member, LEVELS, {"pioneer": "Pioneer"})
    assert [r["rule"] for r in reasons] == rules


def test_eligibility_display_texts() -> None:
    texts = prog.rule_texts({"tiers": ["premium"], "min_level": "Engaged Member", "required_badge": "pioneer"},
                            {"pioneer": "Pioneer"})
    assert texts == {"tier": "Premium members only", "min_level": "Requires Engaged Member level",
                     "required_badge": "Requires the Pioneer badge"}
    zh = prog.rule_texts({"tiers": ["premium", "gold"], "segments": ["新客"], "min_level": "Engaged Member",
                          "required_badge": "pioneer"}, {"pioneer": "先锋"}, "zh-CN")
    assert zh == {"tier": "仅限premium、gold会员", "segment": "仅限新客会员", "min_level": "需达到Engaged Member等级",
                  "required_badge": "需先获得“先锋”徽章"}


def test_step_criterion_refuses_a_window_and_streaks() -> None:
    with pytest.raises(ValidationError) as exc:
        StepIn.model_validate({"title": "x", "criterion": {"event": "post", "threshold": 3,
                                                            "window": {"type": "calendar", "unit": "week"}}})
    assert [e["loc"] for e in exc.value.errors()] == [("criterion", "window")]
    with pytest.raises(ValidationError) as exc:
        StepIn.model_validate({"title": "x", "criterion": {"event": "checkin", "aggregate": "streak", "threshold": 3}})
    assert ("criterion", "aggregate") in [e["loc"] for e in exc.value.errors()]
    ok = StepIn.model_validate({"title": "x", "criterion": {"event": "post", "threshold": 3}})
    assert ok.criterion.threshold == 3


def test_schedule_validation() -> None:
    base = {"key": "k", "title": "t", "steps": [{"title": "s", "criterion": {"event": "post", "threshold": 1}}]}
    with pytest.raises(ValidationError):
        ChallengeCreate.model_validate({**base, "schedule": {"type": "recurring"}})
    with pytest.raises(ValidationError):
        ChallengeCreate.model_validate({**base, "schedule": {"type": "one_time", "recurrence": "weekly"}})
    with pytest.raises(ValidationError):
        ChallengeCreate.model_validate({**base, "schedule": {"starts_at": "2026-12-02T00:00:00Z",
                                                             "ends_at": "2026-12-01T00:00:00Z"}})
