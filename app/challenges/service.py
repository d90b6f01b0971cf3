"""Challenge definitions (admin), joining and progress views (members), completion and expiry.

Progress itself is advanced by the engine listener (listeners.py) inside the ingestion transaction;
this module owns what happens when a participation completes or expires, each exactly once: the
status change is a guarded UPDATE (… WHERE status = 'active'), credits and awards are keyed by the
participation, and everything runs under the member's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.badges import repository as badges_repo
from app.challenges import progress as prog
from app.challenges import repository as repo
from app.challenges.schemas import (
    ChallengeCreate,
    ChallengeOut,
    ChallengeReplace,
    ChallengeStats,
    ChallengeUpdate,
    EligibilityOut,
    InstanceStats,
    MemberChallenge,
    Participation,
    Reason,
    RewardsOut,
    ScheduleOut,
    StepOut,
    StepProgress,
    StepStats,
    VoucherHealth,
    criterion_json,
)
from app.config import Settings
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.events.record import EventRecord
from app.kit import clock
from app.kit.handlers import validation_details
from app.models import Challenge, ChallengeParticipation, User
from app.outbox import service as outbox
from app.points import levels as levels_service
from app.rules import evaluator as ev
from app.rules.criteria import Criterion
from app.users import repository as users_repo
from app.vouchers import repository as vouchers_repo
from app.vouchers import service as vouchers_service

if TYPE_CHECKING:
    from app.events.engine import EngineRun

EXPIRE_BATCH = 500


class ChallengeNotFound(NotFound):
    code = "challenge_not_found"


class ChallengeClosed(Conflict):
    code = "challenge_closed"


class ChallengeNotStarted(Conflict):
    code = "challenge_not_started"


class NotEligible(Forbidden):
    code = "not_eligible"


# --------------------------------------------------------------------------- definitions

_PARSED: dict[tuple[int, datetime], list[Criterion]] = {}


def parsed_steps(ch: Challenge) -> list[Criterion]:
    """Step criteria per challenge version, so the hot path does not re-validate JSON per event."""
    cache_key = (ch.id, ch.updated_at)
    hit = _PARSED.get(cache_key)
    if hit is None:
        if len(_PARSED) > 10_000:
            _PARSED.clear()
        hit = [Criterion.model_validate(s["criterion"]) for s in ch.steps]
        _PARSED[cache_key] = hit
    return hit


def schedule_of(ch: Challenge) -> prog.ScheduleSpec:
    return prog.ScheduleSpec(ch.schedule_type, ch.starts_at, ch.ends_at, ch.recurrence, ch.time_limit_days)


def _schedule_out(ch: Challenge) -> ScheduleOut:
    return ScheduleOut(type=ch.schedule_type, starts_at=ch.starts_at, ends_at=ch.ends_at, recurrence=ch.recurrence,
                       time_limit_days=ch.time_limit_days)


def _rewards_out(ch: Challenge) -> RewardsOut:
    return RewardsOut(points_per_step=ch.points_per_step, bonus_points=ch.bonus_points, badge=ch.reward_badge,
                      voucher=ch.reward_voucher)


def _steps_out(ch: Challenge) -> list[StepOut]:
    return [StepOut(title=s["title"], description=s.get("description", ""), icon=s.get("icon"),
                    criterion=s["criterion"]) for s in ch.steps]


def to_out(ch: Challenge) -> ChallengeOut:
    e = ch.eligibility or {}
    return ChallengeOut(
        key=ch.key, title=ch.title, description=ch.description, icon=ch.icon, steps=_steps_out(ch),
        eligibility=EligibilityOut(tiers=e.get("tiers", []), segments=e.get("segments", []),
                                   min_level=e.get("min_level"), required_badge=e.get("required_badge")),
        schedule=_schedule_out(ch), rewards=_rewards_out(ch), status=ch.status,
        published_at=ch.published_at, archived_at=ch.archived_at, created_at=ch.created_at, updated_at=ch.updated_at,
    )


async def get(session: AsyncSession, key: str, *, lock: bool = False) -> Challenge:
    ch = await repo.by_key(session, key, lock=lock)
    if ch is None:
        raise ChallengeNotFound(f"Challenge '{key}' not found")
    return ch


async def _check_references(session: AsyncSession, ch: Challenge) -> None:
    """Levels, badges and vouchers named by the definition must exist (422 naming the field)."""
    problems: list[dict[str, str]] = []
    level = (ch.eligibility or {}).get("min_level")
    if level and level not in {lv.name for lv in await levels_service.ladder_locked(session)}:
        problems.append({"field": "eligibility.min_level", "message": f"no level named '{level}' on the ladder"})
    # Held (FOR KEY SHARE) until this save commits: a delete of the badge or voucher racing it waits, then sees
    # this challenge naming it (409), or it went first and this save finds it gone.
    badge = (ch.eligibility or {}).get("required_badge")
    if badge and not await badges_repo.hold(session, badge):
        problems.append({"field": "eligibility.required_badge", "message": f"no badge with key '{badge}'"})
    if ch.reward_badge and not await badges_repo.hold(session, ch.reward_badge):
        problems.append({"field": "rewards.badge", "message": f"no badge with key '{ch.reward_badge}'"})
    if ch.reward_voucher and not await vouchers_repo.hold(session, ch.reward_voucher):
        problems.append({"field": "rewards.voucher", "message": f"no voucher with key '{ch.reward_voucher}'"})
    if problems:
        raise InvalidInput(f"Invalid challenge: {problems[0]['field']}: {problems[0]['message']}",
                           code="invalid_reference", details=problems)


def _same_criterion(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal in meaning: a stored form with every default spelled out equals the compact one posted now."""
    return Criterion.model_validate(a).model_dump(mode="json") == Criterion.model_validate(b).model_dump(mode="json")


def _breaking_changes(ch: Challenge, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """Why applying ``fields`` would break members' progress (steps, criteria, instance scheme)."""
    reasons: list[dict[str, Any]] = []
    if "steps" in fields:
        old, new = ch.steps, fields["steps"]
        if len(old) != len(new):
            reasons.append({"field": "steps", "reason": f"the number of steps would change ({len(old)} → {len(new)})"})
        for i, (a, b) in enumerate(zip(old, new, strict=False)):
            if not _same_criterion(a["criterion"], b["criterion"]):
                reasons.append({"field": f"steps.{i}.criterion",
                                "reason": f"the criterion of step {i + 1} would change"})
    new_scheme = (fields.get("schedule_type", ch.schedule_type), fields.get("recurrence", ch.recurrence))
    if new_scheme != (ch.schedule_type, ch.recurrence):
        reasons.append({"field": "schedule.type", "reason": "the schedule type or recurrence would change"})
    return reasons


def _fields_from(body: ChallengeCreate | ChallengeReplace | ChallengeUpdate, partial: bool) -> dict[str, Any]:
    given = body.model_fields_set if partial else set(type(body).model_fields)
    fields: dict[str, Any] = {}
    for name in ("title", "description", "icon"):
        if name in given:  # a PATCH's null is refused by its schema (except icon's, which clears it)
            fields[name] = getattr(body, name)
    if "steps" in given and body.steps is not None:
        fields["steps"] = [
            {"title": s.title, "description": s.description, "icon": s.icon, "criterion": criterion_json(s.criterion)}
            for s in body.steps
        ]
    if "eligibility" in given and body.eligibility is not None:
        fields["eligibility"] = body.eligibility.model_dump()
    if "schedule" in given and body.schedule is not None:
        s = body.schedule
        fields.update(schedule_type=s.type, starts_at=s.starts_at, ends_at=s.ends_at, recurrence=s.recurrence,
                      time_limit_days=s.time_limit_days)
    if "rewards" in given and body.rewards is not None:
        r = body.rewards
        fields.update(points_per_step=r.points_per_step, bonus_points=r.bonus_points, reward_badge=r.badge,
                      reward_voucher=r.voucher)
    return fields


def _merge_nested(ch: Challenge, body: ChallengeUpdate) -> ChallengeUpdate:
    """A PATCH's eligibility, schedule and rewards change the fields they name; the others keep their values.

    Before, `{"rewards": {"bonus_points": 50}}` reset the step points and dropped the voucher, and a partial
    eligibility opened a tier-only challenge to everyone. The merged objects are validated again as a whole (a
    recurring schedule still needs its recurrence)."""
    current: dict[str, dict[str, Any]] = {
        "eligibility": dict(ch.eligibility or {}),
        "schedule": {"type": ch.schedule_type, "starts_at": ch.starts_at, "ends_at": ch.ends_at,
                     "recurrence": ch.recurrence, "time_limit_days": ch.time_limit_days},
        "rewards": {"points_per_step": ch.points_per_step, "bonus_points": ch.bonus_points,
                    "badge": ch.reward_badge, "voucher": ch.reward_voucher},
    }
    merged: dict[str, Any] = {}
    for name, now in current.items():
        given = getattr(body, name)
        if name not in body.model_fields_set or given is None:
            continue
        try:
            merged[name] = type(given).model_validate({**now, **given.model_dump(include=given.model_fields_set)})
        except ValidationError as exc:
            details = validation_details(list(exc.errors()), ("body", name))
            raise InvalidInput(f"Invalid request: {details[0]['field']}: {details[0]['message']}",
                               details=details) from exc
    return body.model_copy(update=merged) if merged else body


async def list_page(
    session: AsyncSession, limit: int, offset: int, status: str | None
) -> tuple[list[ChallengeOut], int]:
    """A slice of the challenges and how many there are in all (of that status)."""
    items, total = await repo.page(session, limit, offset, status)
    return [to_out(c) for c in items], total


async def create(session: AsyncSession, body: ChallengeCreate) -> Challenge:
    if await repo.by_key(session, body.key) is not None:
        raise Conflict(f"Challenge '{body.key}' already exists", code="challenge_exists")
    ch = Challenge(key=body.key, status="draft", **_fields_from(body, partial=False))
    await _check_references(session, ch)
    if body.status == "published":
        ch.status, ch.published_at = "published", clock.utcnow()
        repo.forget_live(session)
    session.add(ch)
    await session.flush()
    if ch.status == "published":
        await _announce(session, ch)
    return ch


async def _announce(session: AsyncSession, ch: Challenge) -> None:
    """A `challenge.published` outbox row for webhooks. Members are told by the scheduler instead, which knows
    who is eligible (notifications.challenge_available)."""
    await outbox.emit(session, "challenge.published", None, {
        "challenge": ch.key, "title": ch.title, "schedule_type": ch.schedule_type,
        "published_at": clock.shown(ch.published_at) if ch.published_at else None,
        "starts_at": clock.shown(ch.starts_at) if ch.starts_at else None,
        "ends_at": clock.shown(ch.ends_at) if ch.ends_at else None,
    })


async def update(session: AsyncSession, settings: Settings, key: str,
                 body: ChallengeReplace | ChallengeUpdate) -> Challenge:
    """Copy and icons can always change; steps, criteria and the instance scheme only while a draft.

    Once published, a change that would break progress is refused whether or not anyone has joined yet:
    a member may join between the admin reading the challenge and saving it, and members' views (and
    events already counted) must keep meaning what they meant when the challenge went live."""
    ch = await get(session, key, lock=True)  # a publish racing this edit waits, or this edit sees it published
    if isinstance(body, ChallengeReplace) and body.key is not None and body.key != key:
        raise InvalidInput("The key in the body does not match the path", code="key_mismatch")
    if isinstance(body, ChallengeReplace) and body.status is not None and body.status != ch.status:
        raise InvalidInput(
            f"The challenge is {ch.status}: its status changes through /publish and /archive, not a PUT",
            code="status_mismatch", details=[{"field": "body.status", "message": f"is {ch.status}"}],
        )
    if ch.status == "archived":
        raise Conflict("Archived challenges cannot be changed", code="challenge_archived")
    if isinstance(body, ChallengeUpdate):
        body = _merge_nested(ch, body)
    fields = _fields_from(body, partial=isinstance(body, ChallengeUpdate))
    if ch.status == "published":
        reasons = _breaking_changes(ch, fields)
        if reasons:
            raise Conflict(f"The challenge is published and this would break progress: {reasons[0]['reason']}",
                           code="challenge_in_progress", details=reasons)
    schedule_changed = any(
        name in fields and fields[name] != getattr(ch, name) for name in ("starts_at", "ends_at", "time_limit_days")
    )
    for name, value in fields.items():
        setattr(ch, name, value)
    await _check_references(session, ch)
    ch.updated_at = clock.utcnow()
    await session.flush()
    if schedule_changed:
        await _recompute_deadlines(session, settings, ch)
    return ch


async def _recompute_deadlines(session: AsyncSession, settings: Settings, ch: Challenge) -> None:
    spec = schedule_of(ch)
    for p, _c, _u in await repo.active_of_challenge(session, ch.id):
        await repo.set_deadline(session, p.id, prog.deadline_for(spec, p.instance_key, p.joined_at, settings.tz))


async def delete(session: AsyncSession, key: str) -> None:
    # Locked first (FOR UPDATE): a join in flight holds the row FOR SHARE, so it is waited for and its participation
    # counted below, and a join starting meanwhile waits and then finds the challenge gone. Read without the lock,
    # "nobody joined" could be stale by the time the row is deleted, and the participation would go with it.
    ch = await get(session, key, lock=True)
    if await repo.participation_count(session, ch.id):
        raise Conflict("Members have joined this challenge; archive it instead", code="challenge_has_participants")
    await session.delete(ch)
    await session.flush()


async def publish(session: AsyncSession, key: str) -> Challenge:
    ch = await get(session, key, lock=True)  # concurrent publishes announce once; a racing archive waits
    if ch.status == "published":
        return ch
    if ch.status == "archived":
        raise Conflict("Archived challenges cannot be published again", code="challenge_archived")
    await _check_references(session, ch)
    ch.status, ch.published_at, ch.updated_at = "published", clock.utcnow(), clock.utcnow()
    repo.forget_live(session)
    await session.flush()
    await _announce(session, ch)
    return ch


async def archive(session: AsyncSession, key: str) -> Challenge:
    """Close the challenge: no more joins or progress; active participations expire now."""
    ch = await get(session, key, lock=True)
    if ch.status == "archived":
        return ch
    now = clock.utcnow()
    ch.status, ch.archived_at, ch.updated_at = "archived", now, now
    await session.flush()
    for p, c, user in await repo.active_of_challenge(session, ch.id):
        await _expire(session, p, c, user, now)
    return ch


# --------------------------------------------------------------------------- eligibility


@dataclass
class MemberContext:
    facts: prog.MemberFacts
    level_points: dict[str, int]
    badge_names: dict[str, str]
    locale: str = "en"


async def member_context(
    session: AsyncSession, user: User, challenges: list[Challenge], locale: str = "en"
) -> MemberContext:
    ladder = await levels_service.ladder(session)
    wanted = {(c.eligibility or {}).get("required_badge") for c in challenges} - {None}
    names: dict[str, str] = {}
    for key in wanted:
        badge = await badges_repo.by_key(session, str(key))
        if badge is not None:
            translated = ((badge.translations or {}).get(locale) or {}).get("name")
            names[badge.key] = translated or badge.name
    held = await repo.held_badge_keys(session, user.id) if wanted else frozenset()
    facts = prog.MemberFacts(tier=user.tier, segments=list(user.segments or []), points=user.points,
                             held_badges=held)
    return MemberContext(facts, {lv.name: lv.points_required for lv in ladder}, names, locale)


def reasons_for(ch: Challenge, ctx: MemberContext) -> list[Reason]:
    raw = prog.unmet_rules(ch.eligibility or {}, ctx.facts, ctx.level_points, ctx.badge_names, ctx.locale)
    return [Reason.model_validate(r) for r in raw]


# --------------------------------------------------------------------------- members


def _num(value: Any) -> int | float:
    return prog.num(value)


def participation_view(p: ChallengeParticipation, ch: Challenge, now: datetime, settings: Settings) -> Participation:
    steps = parsed_steps(ch)
    items: list[StepProgress] = []
    for i, (c, s) in enumerate(zip(steps, ch.steps, strict=False)):
        entry = p.progress[i] if i < len(p.progress) else {}
        state = ev.CounterState.from_json(entry.get("state"))
        done_at = entry.get("done_at")
        items.append(StepProgress(
            step=i, title=s["title"], description=s.get("description", ""), icon=s.get("icon"),
            current=_num(prog.step_value(c, state, now, settings.tz)), target=_num(ev.threshold_decimal(c)),
            done=bool(done_at), done_at=datetime.fromisoformat(done_at) if done_at else None,
        ))
    left = None
    if p.status == "active" and p.deadline is not None:
        left = max(0, int((p.deadline - now).total_seconds()))
    return Participation(
        key=ch.key, title=ch.title, description=ch.description, icon=ch.icon, instance=p.instance_key,
        status=p.status,
        joined_at=p.joined_at, completed_at=p.completed_at, deadline=p.deadline, time_left_seconds=left,
        percent=100 if p.status == "completed" else prog.percent(steps, p.progress, now, settings.tz),
        steps_done=prog.steps_done(p.progress), steps_total=len(steps), steps=items, rewards=_rewards_out(ch),
    )


def _member_challenge(ch: Challenge, ctx: MemberContext, mine: dict[tuple[int, str], ChallengeParticipation],
                      now: datetime, settings: Settings) -> MemberChallenge:
    spec = schedule_of(ch)
    instance, _ = prog.instance_at(spec, now, settings.tz)
    p = mine.get((ch.id, instance))
    reasons = reasons_for(ch, ctx)
    deadline = p.deadline if p is not None else prog.deadline_for(spec, instance, now, settings.tz)
    return MemberChallenge(
        key=ch.key, title=ch.title, description=ch.description, icon=ch.icon, steps=_steps_out(ch),
        schedule=_schedule_out(ch), rewards=_rewards_out(ch),
        open=ch.status == "published" and prog.open_state(spec, now) == "open",
        instance=instance, deadline=deadline, eligible=not reasons, reasons=reasons,
        reason_text=" · ".join(r.text for r in reasons) or None,
        joined=p is not None, participation_status=p.status if p is not None else None,
    )


async def list_for_member(
    session: AsyncSession, settings: Settings, user: User, locale: str = "en"
) -> list[MemberChallenge]:
    """Published challenges that have not ended, with the caller's eligibility and joined state."""
    now = clock.utcnow()
    await expire_due_for_user(session, user, now)
    challenges = [c for c in await repo.published(session) if prog.open_state(schedule_of(c), now) != "ended"]
    ctx = await member_context(session, user, challenges, locale)
    mine = await repo.current_for_user(session, user.id, [c.id for c in challenges])
    return [_member_challenge(c, ctx, mine, now, settings) for c in challenges]


async def _visible(session: AsyncSession, key: str) -> Challenge:
    ch = await repo.by_key(session, key)
    if ch is None or ch.status == "draft":
        raise ChallengeNotFound(f"Challenge '{key}' not found")
    return ch


async def get_for_member(
    session: AsyncSession, settings: Settings, user: User, key: str, locale: str = "en"
) -> MemberChallenge:
    ch = await _visible(session, key)
    now = clock.utcnow()
    await expire_due_for_user(session, user, now)
    ctx = await member_context(session, user, [ch], locale)
    mine = await repo.current_for_user(session, user.id, [ch.id])
    return _member_challenge(ch, ctx, mine, now, settings)


async def join(
    session: AsyncSession, settings: Settings, user: User, key: str, locale: str = "en"
) -> tuple[Participation, bool]:
    """Join the current instance; joining again returns the same participation (created=False)."""
    ch = await _visible(session, key)  # drafts are invisible to members, even here
    # Read again under a shared lock: a join racing an archive must not leave an active participation in an
    # archived challenge (nothing would ever expire it without a deadline), nor one racing an edit of the
    # schedule keep a deadline from before it.
    locked = await repo.shared(session, ch.id)
    if locked is None or locked.status == "archived":
        raise ChallengeClosed("This challenge has ended")
    ch = locked
    now = clock.utcnow()
    spec = schedule_of(ch)
    state = prog.open_state(spec, now)
    if state == "not_started":
        starts = clock.shown(spec.starts_at) if spec.starts_at else None
        raise ChallengeNotStarted("This challenge has not started yet", details={"starts_at": starts})
    if state == "ended":
        raise ChallengeClosed("This challenge has ended",
                              details={"ends_at": clock.shown(spec.ends_at) if spec.ends_at else None})
    # Ordered with this member's engine runs; eligibility (a level) is judged on the balance read under the lock.
    set_committed_value(user, "points", await users_repo.lock_member(session, user.id))
    # What eligibility reads of the member, as committed when the lock was granted (a profile sync holding the
    # row went first: judged on the tier read before, an upgrade just made would still be refused).
    await session.refresh(user, attribute_names=["tier", "segments"])
    # As every member view does: a participation whose deadline has passed is expired before it is answered, not
    # shown as active with no time left until the job gets to it.
    await expire_due_for_user(session, user, now)
    instance, _ = prog.instance_at(spec, now, settings.tz)
    existing = await repo.participation(session, ch.id, instance, user.id)
    if existing is None:
        ctx = await member_context(session, user, [ch], locale)
        reasons = reasons_for(ch, ctx)
        if reasons:
            raise NotEligible(" · ".join(r.text for r in reasons),
                              details={"reasons": [r.model_dump() for r in reasons]})
        deadline = prog.deadline_for(spec, instance, now, settings.tz)
        pid = await repo.insert_participation(
            session, challenge_id=ch.id, instance_key=instance, user_id=user.id, joined_at=now, deadline=deadline,
            progress=prog.empty_progress(len(ch.steps)),
        )
        existing = await repo.participation(session, ch.id, instance, user.id)
        assert existing is not None
        created = pid is not None
    else:
        created = False
    return participation_view(existing, ch, now, settings), created


async def my_challenges(
    session: AsyncSession, settings: Settings, user: User, limit: int, offset: int, status: str | None
) -> tuple[list[Participation], int]:
    now = clock.utcnow()
    await expire_due_for_user(session, user, now)
    rows, total = await repo.for_user(session, user.id, limit, offset, status)
    return [participation_view(p, c, now, settings) for p, c in rows], total


# --------------------------------------------------------------------------- completion and expiry


def _done_at(event: EventRecord, joined_at: datetime) -> datetime:
    """When a step or challenge counts as done: the event's time, but never before the member joined (an event
    inside the join grace or the instance's start may have occurred a little earlier)."""
    return max(event.occurred_at, joined_at)


async def credit_step(
    run: EngineRun, pid: int, ch: Challenge, instance: str, step: int, event: EventRecord, joined_at: datetime
) -> None:
    title = ch.steps[step]["title"]
    points = ch.points_per_step
    if points:
        # A step is done once per participation (the row is locked while its progress moves): nothing to look up.
        await run.credit_points(points, reason=f"Challenge step: {title}"[:200], source_type="challenge_step",
                                source_id=f"{pid}:{step}", at=_done_at(event, joined_at), fresh=True)
    run.store.emit("challenge.step_completed", run.user.id, {
        "user_id": run.user.external_id, "challenge": ch.key, "title": ch.title, "instance": instance,
        "participation_id": pid, "step": step, "step_title": title, "points": points,
        "completed_at": clock.shown(_done_at(event, joined_at)),
    }, clock.utcnow())


async def complete(
    run: EngineRun, pid: int, ch: Challenge, instance: str, event: EventRecord, joined_at: datetime
) -> dict[str, Any] | None:
    """All steps done: bonus, badge and voucher, once (the guarded status change is the gate)."""
    at = _done_at(event, joined_at)
    if not await repo.mark_completed(run.session, pid, at):
        return None
    rewards: dict[str, Any] = {"bonus_points": ch.bonus_points, "badge": None, "voucher": None}
    if ch.bonus_points:
        # The guarded status change above happens once: nothing to look up.
        await run.credit_points(ch.bonus_points, reason=f"Challenge completed: {ch.title}"[:200],
                                source_type="challenge_bonus", source_id=str(pid), at=at, fresh=True)
    # Emitted before the badge and voucher rows it causes (receivers read "completed" first); its `badge` is filled
    # in below only if this completion awards it (a non-repeatable badge already held is not awarded again).
    announced: dict[str, Any] = {
        "user_id": run.user.external_id, "challenge": ch.key, "title": ch.title, "instance": instance,
        "participation_id": pid, "bonus_points": ch.bonus_points, "badge": None,
        "voucher": ch.reward_voucher, "completed_at": clock.shown(at),
    }
    run.store.emit("challenge.completed", run.user.id, announced, clock.utcnow())
    if ch.reward_badge:
        badge = await badges_repo.by_key(run.session, ch.reward_badge)
        if badge is not None:
            award_id = await run.award_badge(
                badge, source="challenge", award_key=f"challenge:{pid}" if badge.repeatable else "once", at=at,
                evidence={"challenge": ch.key, "instance": instance, "participation_id": pid, "event_id": event.id},
            )
            if award_id is not None:
                rewards["badge"] = {"key": badge.key, "award_id": award_id}
                announced["badge"] = badge.key
    if ch.reward_voucher:
        voucher = await vouchers_repo.by_key(run.session, ch.reward_voucher)
        if voucher is not None:
            issued = await vouchers_service.issue(run.session, voucher, run.user, source_type="challenge",
                                                  source_id=str(pid))
            if issued is not None:
                rewards["voucher"] = issued.to_json(voucher.key)
    return rewards


async def _expire(session: AsyncSession, p: ChallengeParticipation, ch: Challenge, user: User, now: datetime) -> bool:
    if not await repo.mark_expired(session, p.id, now):
        return False
    p.status = "expired"
    await outbox.emit(session, "challenge.expired", user.id, {
        "user_id": user.external_id, "challenge": ch.key, "title": ch.title, "instance": p.instance_key,
        "participation_id": p.id, "steps_done": p.steps_done, "steps_total": len(ch.steps),
        "deadline": clock.shown(p.deadline) if p.deadline else None, "expired_at": clock.shown(now),
    })
    return True


async def expire_due(session: AsyncSession, now: datetime | None = None) -> int:
    """Expire every participation whose deadline has passed (periodic job, stats); returns how many.

    In batches of EXPIRE_BATCH until none is left (rows another transaction holds are skipped and left to the
    next run): one batch per call left the rest of a big weekly instance active, in the stats too, for another
    minute per 500 participants."""
    now = now or clock.utcnow()
    n = 0
    while True:
        due = await repo.due_for_expiry(session, now, EXPIRE_BATCH)
        done = 0
        for p, ch, user in due:
            done += await _expire(session, p, ch, user, now)
        n += done
        if len(due) < EXPIRE_BATCH or not done:
            return n


async def expire_due_for_user(session: AsyncSession, user: User, now: datetime) -> int:
    n = 0
    for p, ch, u in await repo.due_for_expiry(session, now, EXPIRE_BATCH, user_id=user.id):
        n += await _expire(session, p, ch, u, now)
    return n


# --------------------------------------------------------------------------- stats


def _instance_stats(ch: Challenge, instance: str, current: bool, rows: list[Any]) -> InstanceStats:
    joined = len(rows)
    by_status = {s: sum(1 for r in rows if r.status == s) for s in ("active", "completed", "expired")}
    durations = [(r.completed_at - r.joined_at).total_seconds() for r in rows if r.completed_at is not None]
    steps = []
    # Steps can be done in any order: who dropped off at a step is counted member by member (did the step before
    # — or joined, for the first — but not this one), not as a difference of two counts, in which a member who did
    # only the step before and one who did only this step cancelled out.
    before = [True] * joined  # per participant: got as far as the step before this one
    for i, s in enumerate(ch.steps):
        done = [bool(i < len(r.progress) and r.progress[i].get("done_at")) for r in rows]
        reached = sum(done)
        came = sum(before)
        dropped = sum(1 for b, d in zip(before, done, strict=True) if b and not d)
        steps.append(StepStats(step=i, title=s["title"], reached=reached,
                               rate=reached / joined if joined else 0.0,
                               drop_off=dropped, drop_off_rate=dropped / came if came else 0.0))
        before = done
    return InstanceStats(
        instance=instance, current=current, joined=joined, active=by_status["active"],
        completed=by_status["completed"], expired=by_status["expired"],
        completion_rate=by_status["completed"] / joined if joined else 0.0,  # exact, as the analytics report's
        median_time_to_complete_seconds=median(durations) if durations else None, steps=steps,
    )


async def stats(session: AsyncSession, settings: Settings, key: str) -> ChallengeStats:
    ch = await get(session, key)
    now = clock.utcnow()
    await expire_due(session, now)
    rows = list(await repo.stats_rows(session, ch.id))
    current, _ = prog.instance_at(schedule_of(ch), now, settings.tz)
    overall = _instance_stats(ch, "all", False, rows)
    instances = sorted({r.instance_key for r in rows} | ({current} if ch.status == "published" else set()),
                       reverse=True)
    voucher = None
    if ch.reward_voucher:
        v = await vouchers_repo.by_key(session, ch.reward_voucher)
        if v is not None:
            out = await vouchers_service.view(session, v)
            voucher = VoucherHealth(key=v.key, pending_count=out.pending_count, codes_available=out.codes_available,
                                    warning=out.warning)
    return ChallengeStats(
        key=ch.key, joined=overall.joined, active=overall.active, completed=overall.completed,
        expired=overall.expired, completion_rate=overall.completion_rate,
        median_time_to_complete_seconds=overall.median_time_to_complete_seconds, steps=overall.steps,
        instances=[_instance_stats(ch, i, i == current, [r for r in rows if r.instance_key == i]) for i in instances],
        voucher=voucher,
    )

