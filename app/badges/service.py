"""Badge definitions, the member's collection with live progress, manual grants and statistics."""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.service import KeyPrincipal
from app.badges import repository as badges_repo
from app.badges import rules_cache
from app.badges.schemas import (
    AwardEvidence,
    AwardOut,
    BadgeCreate,
    BadgePatch,
    BadgeStats,
    BadgeUpdate,
    MemberBadge,
    ProgressOut,
    ShareOut,
)
from app.challenges import repository as challenges_repo
from app.config import Settings
from app.errors import Conflict, InvalidInput, NotFound
from app.events import repository as events_repo
from app.events.engine import EngineRun, in_season, next_multiple, num
from app.icons import service as icons_service
from app.kit.clock import utcnow
from app.kit.handlers import validation_details
from app.kit.periods import ordinal_bounds, period_ordinal
from app.models import Badge, User, UserBadge
from app.outbox import service as outbox
from app.points import repository as points_repo
from app.rules import evaluator as ev
from app.rules.criteria import CalendarWindow, Criterion, FixedWindow, RollingWindow, as_posted
from app.users import repository as users_repo

WINDOW_TEXT = {
    "en": {"day": "today", "week": "this week", "month": "this month", "year": "this year"},
    "zh-CN": {"day": "今天", "week": "本周", "month": "本月", "year": "今年"},
}


_UPLOAD_ID = re.compile(r"^(?:upload:)?([0-9a-f]{32})$")


def icon_url(settings: Settings, icon: str | None) -> str | None:
    """A badge's `icon` is a built-in icon name, an uploaded icon's id (`<id>` or `upload:<id>`), or a URL."""
    if not icon:
        return None
    if icon.startswith(("http://", "https://", "/")):
        return icon
    upload = _UPLOAD_ID.match(icon)
    if upload:  # served by its id as by its file name
        return icons_service.upload_url(settings, upload.group(1))
    return icons_service.builtin_url(settings, icon)  # one base URL rule with the icon library's (a trailing "/")


def _dump(body: BadgeCreate | BadgeUpdate) -> dict[str, Any]:
    data = body.model_dump(mode="json", exclude={"key"})
    if data["status"] is None:  # a replacement (PUT) that does not mention the status keeps it
        del data["status"]
    data["criteria"] = [as_posted(c) for c in body.criteria]  # as sent, not padded with every default
    data["available_from"] = body.available_from
    data["available_until"] = body.available_until
    return data


async def get(session: AsyncSession, key: str, *, lock: bool = False) -> Badge:
    badge = await badges_repo.by_key(session, key, lock=lock)
    if badge is None:
        raise NotFound(f"Badge '{key}' not found", code="badge_not_found")
    return badge


def _apply(badge: Badge, data: dict[str, Any]) -> None:
    was_active = badge.status == "active"
    for name, value in data.items():
        setattr(badge, name, value)
    now = utcnow()
    badge.updated_at = now
    if badge.created_at is None:
        badge.created_at = now  # one instant: a new badge is never "updated" before it was created
    if badge.status == "active" and not was_active:
        # Activation never re-awards history: a badge is awarded by the events that reach it while active (their
        # counters may include events from before, as a late event's do). `activated_at` is shown to admins.
        badge.activated_at = now


async def create(session: AsyncSession, body: BadgeCreate) -> Badge:
    if await badges_repo.by_key(session, body.key) is not None:
        raise Conflict(f"Badge '{body.key}' already exists", code="badge_exists")
    badge = Badge(key=body.key, status="draft")
    _apply(badge, _dump(body))
    session.add(badge)
    await session.flush()
    rules_cache.invalidate(session)
    return badge


async def replace(session: AsyncSession, key: str, body: BadgeUpdate) -> Badge:
    if body.key is not None and body.key != key:
        raise InvalidInput("The key of a badge cannot change", code="key_mismatch")
    badge = await get(session, key)
    _apply(badge, _dump(body))
    await session.flush()
    rules_cache.invalidate(session)
    return badge


async def patch(session: AsyncSession, key: str, body: BadgePatch) -> Badge:
    badge = await get(session, key)
    try:
        merged = _merged(badge, body)
    except ValidationError as exc:  # e.g. a field set to null that cannot be empty
        details = validation_details(list(exc.errors()), ("body",))
        raise InvalidInput(f"Invalid request: {details[0]['field']}: {details[0]['message']}", details=details) from exc
    _apply(badge, _dump(merged))
    await session.flush()
    rules_cache.invalidate(session)
    return badge


def _merged(badge: Badge, body: BadgePatch) -> BadgeCreate:
    """The badge as it would be with the patch applied, validated as a whole. A badge that is not (or no
    longer) seasonal drops a stored season, unless the patch sets one, which validation then refuses."""
    patch = body.model_dump(exclude_unset=True)
    season = {"available_from": badge.available_from, "available_until": badge.available_until}
    if (patch.get("visibility") or badge.visibility) != "seasonal":
        season = {"available_from": None, "available_until": None}
    return BadgeCreate.model_validate(
        {
            "key": badge.key,
            "name": badge.name,
            "description": badge.description,
            "how_to_earn": badge.how_to_earn,
            "icon": badge.icon,
            "criteria": badge.criteria,
            "points": badge.points,
            "visibility": badge.visibility,
            **season,
            "repeatable": badge.repeatable,
            "status": badge.status,
            "translations": badge.translations,
            **patch,
        }
    )


async def delete(session: AsyncSession, key: str) -> None:
    # Locked first: an award being written now (its transaction holds the row FOR KEY SHARE) is waited for and
    # then counted below, and one starting meanwhile waits and finds the badge gone. Read without the lock, "no
    # awards" could be stale by the time the row is deleted, and the award's row would go with it (ON DELETE
    # CASCADE) while its points, its badge.awarded event and its outbox rows stayed.
    badge = await get(session, key, lock=True)
    named_by = await challenges_repo.keys_naming_badge(session, key)
    if named_by:
        # Deleting it would silently drop a promised reward, or lock everyone out of a challenge.
        raise Conflict("Challenges still reward or require this badge", code="badge_in_use",
                       details={"challenges": named_by})
    if await badges_repo.award_count(session, badge.id):
        raise Conflict("Badge has been awarded; archive it instead", code="badge_has_awards")
    # Its members' progress goes with it: SQLite hands a deleted row's id to the next badge, which would otherwise
    # start from this one's counters (and on PostgreSQL nothing would ever read them again).
    await badges_repo.delete_every_counter(session, rules_cache.scope_prefix(badge.id))
    await session.delete(badge)
    await session.flush()
    rules_cache.invalidate(session)


def _text(locale: str, badge: Badge, field: str) -> str:
    tr = (badge.translations or {}).get(locale) or {}
    value = tr.get(field)
    return value if value else str(getattr(badge, field))


# What an award event counts, by its type's name.
_AWARD_NOUNS = {"badge.awarded": "badge", "level.reached": "level"}


def _unit(c: Criterion, target: Decimal) -> str:
    """The English noun of a count, with its leading space: what `count_distinct` tells apart ("store_id" →
    "stores"), or the events `count` counts ("check_in" → "check-ins"); a sum's field (an amount) gets none."""
    if c.aggregate == "count_distinct" and c.field:
        noun = re.sub(r"[_.](id|code|key|no)$", "", c.field).rsplit(".", 1)[-1].replace("_", " ")
    elif c.aggregate == "count":
        noun = _AWARD_NOUNS.get(c.event) or c.event.rsplit(".", 1)[-1].replace("_", "-")
    else:
        return ""
    if not noun or target == 1:
        return f" {noun}" if noun else ""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return f" {noun[:-1]}ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return f" {noun}es"
    return f" {noun}s"


def _progress(
    c: Criterion, states: dict[str, ev.CounterState], now: datetime, settings: Settings, locale: str,
    toward_next: bool = False,
) -> ProgressOut:
    """`toward_next`: a repeatable badge earned once per multiple of a lifetime threshold shows the way to its
    next multiple ("4 of 6"), not the first one passed long ago ("4 of 3")."""
    p = ev.progress(c, states, now, settings.tz)
    goal = p.target
    if toward_next and goal > 0:
        goal = goal * (math.floor(p.current / goal) + 1)
    current, target = num(p.current), num(goal)
    w = c.window
    words = WINDOW_TEXT.get(locale, WINDOW_TEXT["en"])
    of = f"{current} of {target}{_unit(c, goal)}"  # English: "2 of 3 stores"
    if c.aggregate == "streak" and isinstance(w, CalendarWindow):
        text = f"连续 {current}/{target}" if locale == "zh-CN" else f"{current} of {target} {w.unit}s in a row"
    elif isinstance(w, CalendarWindow):
        text = f"{words[w.unit]} {current}/{target}" if locale == "zh-CN" else f"{of} {words[w.unit]}"
    elif isinstance(w, RollingWindow):
        text = f"近 {w.days} 天 {current}/{target}" if locale == "zh-CN" else f"{of} in the last {w.days} days"
    elif isinstance(w, FixedWindow):
        # The window may not have opened yet (a festival ahead) or may be over: say so, not just "until".
        # Its end is exclusive: the last day shown is the day of its last instant, so a bare end date (inclusive,
        # stored as the next midnight) reads as the date the admin gave, not the day after.
        start = w.start.astimezone(settings.tz).date().isoformat()
        end = (w.end - timedelta(microseconds=1)).astimezone(settings.tz).date().isoformat()
        if now >= w.end:
            text = f"{current}/{target}，已于 {end} 结束" if locale == "zh-CN" else f"{of}, ended {end}"
        elif now < w.start:
            text = f"{current}/{target}，{start} 至 {end}" if locale == "zh-CN" else f"{of}, from {start} until {end}"
        else:
            text = f"{current}/{target}，截至 {end}" if locale == "zh-CN" else f"{of} until {end}"
    else:
        text = f"{current}/{target}" if locale == "zh-CN" else of
    percent = float(min(Decimal(100), (p.current / goal * 100) if goal else Decimal(100)))
    return ProgressOut(
        current=current,
        target=target,
        percent=round(max(percent, 0.0), 1),
        window_start=p.window_start,
        window_end=p.window_end,
        text=text,
    )


async def collection(
    session: AsyncSession, settings: Settings, user: User, locale: str, only_key: str | None = None
) -> list[MemberBadge]:
    """Every badge the member can see — earned, and locked with live progress for the window containing now."""
    now = utcnow()
    badges = [b for b in await badges_repo.visible_to_members(session) if only_key is None or b.key == only_key]
    awards = await badges_repo.awards_of(session, user.id)
    by_badge: dict[int, list[UserBadge]] = {}
    for a in awards:
        by_badge.setdefault(a.badge_id, []).append(a)
    shown = [b for b in badges if b.id in by_badge or (b.status == "active" and b.visibility != "invite_only")]
    criteria = {b.id: rule.criteria if (rule := rules_cache.valid_rule(b)) else () for b in shown}
    wanted: set[tuple[str, str]] = set()
    for b in shown:
        for scope, c in criteria[b.id]:
            wanted.update((scope, bucket) for bucket in ev.buckets_needed(c, now, settings.tz))
    raw = await events_repo.load_counters(session, user.id, wanted)
    holders = await badges_repo.holder_counts(session)
    members = max(await badges_repo.member_count(session), 1)
    out: list[MemberBadge] = []
    for b in shown:
        held = by_badge.get(b.id, [])
        crit_progress: list[ProgressOut] = []
        earnable = b.status == "active"  # an archived (or draft) badge shows no way to earn it again
        toward_next = earnable and b.repeatable and next_multiple(criteria[b.id])
        if not held or (b.repeatable and earnable):
            for scope, c in criteria[b.id]:
                states = {
                    bk: ev.CounterState.from_json(raw.get((scope, bk))) for bk in ev.buckets_needed(c, now, settings.tz)
                }
                crit_progress.append(_progress(c, states, now, settings, locale, toward_next))
        ahead = not held or toward_next  # progress toward an award still to come
        blocking = min(crit_progress, key=lambda p: p.percent) if crit_progress and ahead else None
        rarity = holders.get(b.id, 0) / members
        out.append(
            MemberBadge(
                key=b.key,
                name=_text(locale, b, "name"),
                description=_text(locale, b, "description"),
                how_to_earn=_text(locale, b, "how_to_earn"),
                icon=b.icon,
                icon_url=icon_url(settings, b.icon),
                icon_alt=_text(locale, b, "name"),
                visibility=b.visibility,
                repeatable=b.repeatable,
                points=b.points,
                earned=bool(held),
                earned_at=held[0].awarded_at if held else None,
                times_earned=len(held),
                progress=blocking,
                criteria_progress=crit_progress,
                rarity=rarity,
                rarity_percent=round(rarity * 100, 2),
                available_from=b.available_from,
                available_until=b.available_until,
                available_now=b.status == "active" and in_season(b, now),
            )
        )
    return out


async def member_badge(session: AsyncSession, settings: Settings, user: User, key: str, locale: str) -> MemberBadge:
    items = await collection(session, settings, user, locale, only_key=key)
    if not items:
        raise NotFound(f"Badge '{key}' not found", code="badge_not_found")
    return items[0]


async def share(session: AsyncSession, settings: Settings, user: User, key: str, locale: str) -> ShareOut:
    item = await member_badge(session, settings, user, key, locale)
    if not item.earned:
        raise NotFound("You have not earned this badge yet", code="badge_not_earned")
    title = f"我获得了「{item.name}」徽章！" if locale == "zh-CN" else f"I earned the {item.name} badge!"
    query = f"key={item.key}&from_user={user.id}"
    image = item.icon_url
    if settings.share_image_url and (image is None or not await _shareable(session, item.icon, image)):
        image = settings.share_image_url  # a card WeChat can show (PNG/JPEG), not the SVG or WebP icon
    return ShareOut(
        title=title,
        path=f"/pages/badge/detail?{query}",
        image_url=image,
        query=query,
        timeline={"title": title, "query": query, "image_url": image},
    )


# What WeChat's share card shows.
_SHAREABLE_TYPES = frozenset({"image/png", "image/jpeg"})


async def _shareable(session: AsyncSession, icon: str | None, url: str) -> bool:
    """Whether a badge's icon can be a share card (PNG or JPEG): not an SVG (every built-in icon) or WebP, whether
    an upload (its URL, by id, carries no extension: its stored type decides) or a URL ending so."""
    upload = _UPLOAD_ID.match(icon or "")
    if upload:
        return await icons_service.upload_content_type(session, upload.group(1)) in _SHAREABLE_TYPES
    return not url.lower().endswith((".svg", ".webp"))


async def _member(session: AsyncSession, external_id: str) -> User:
    user = await users_repo.by_external_id(session, external_id)
    if user is None:
        raise NotFound("Member not found", code="user_not_found")
    return user


async def grant(
    session: AsyncSession, settings: Settings, actor: KeyPrincipal, external_id: str, key: str, reason: str
) -> AwardOut:
    """Manual grant (also how invite-only badges are given); audited."""
    user = await _member(session, external_id)
    badge = await get(session, key)
    if badge.status != "active":
        raise Conflict(f"This badge is {badge.status}: activate it before granting it", code="badge_not_active")
    run = await EngineRun.begin(session, settings, user)
    award_key = f"manual:{uuid.uuid4().hex}" if badge.repeatable else "once"
    award_id = await run.award_badge(
        badge, award_key=award_key, source="manual", evidence={"manual": True, "actor": actor.name, "reason": reason}
    )
    if award_id is None:
        raise Conflict("Member already holds this badge", code="badge_already_held")
    await run.settle()
    await audit.record(
        session,
        actor=actor.name,
        actor_key_id=actor.key_id,
        action="badge.grant",
        reason=reason,
        user_id=user.id,
        target=key,
        details={"award_id": award_id},
    )
    await run.flush()  # the award row is buffered until now: the reply names its stored time
    return AwardOut(
        award_id=award_id,
        badge=key,
        user_id=external_id,
        awarded_at=await badges_repo.awarded_at(session, award_id) or utcnow(),
        source="manual",
        points_credited=run.outcome.points_credited,
        levels_reached=run.outcome.levels_reached,
    )


async def revoke(
    session: AsyncSession,
    settings: Settings,
    actor: KeyPrincipal,
    external_id: str,
    key: str,
    reason: str,
    reset_progress: bool = False,
) -> dict[str, Any]:
    """Remove the latest award and take back the points it credited (never below zero); audited. With
    `reset_progress`, the member's counters toward the badge go too, so history cannot re-award it."""
    user = await _member(session, external_id)
    badge = await get(session, key)
    if reset_progress and badge.repeatable:
        # Its standing awards keep their repeat keys ("the 2nd ten"), so progress restarted from zero would have
        # to pass them all again before earning anything.
        raise InvalidInput(
            "reset_progress applies to badges earned once; this one is repeatable",
            code="reset_progress_unsupported",
            details=[{"field": "body.reset_progress", "message": "not for a repeatable badge"}],
        )
    run = await EngineRun.begin(session, settings, user)
    awards = await badges_repo.awards_for(session, user.id, badge.id)
    if not awards:
        raise NotFound("Member does not hold this badge", code="badge_not_held")
    award = awards[-1]
    await badges_repo.delete_award(session, award.id)
    await run.withdraw_award_event(award)
    if reset_progress:
        await run.forget_counters(rules_cache.scope_prefix(badge.id))  # every version of its criteria
    # What the award credited, as its ledger entry says: the badge's points may have been edited since.
    credited = await points_repo.by_source(session, "badge", str(award.id))
    clawback = min(credited.amount if credited else 0, max(user.points, 0))
    if clawback:
        # Taken back in the period the award's points were scored in (a points leaderboard's), not this one.
        award_event = await events_repo.record_by_key(session, f"laurel:badge.awarded:{award.id}")
        await run.credit_points(
            -clawback, reason=f"Badge revoked: {badge.name}", source_type="badge_revoke", source_id=str(award.id),
            at=award_event.occurred_at if award_event else None,
        )
    await outbox.emit(
        session,
        "badge.revoked",
        user.id,
        {"user_id": external_id, "badge": key, "award_id": award.id, "reason": reason},
    )
    await audit.record(
        session,
        actor=actor.name,
        actor_key_id=actor.key_id,
        action="badge.revoke",
        reason=reason,
        user_id=user.id,
        target=key,
        details={"award_id": award.id, "points_reversed": clawback, "progress_reset": reset_progress},
    )
    return {"revoked": True, "award_id": award.id, "badge": key, "user_id": external_id, "points_reversed": clawback,
            "progress_reset": reset_progress}


async def evidence(session: AsyncSession, external_id: str) -> list[AwardEvidence]:
    """Why a member holds each badge: the criteria, buckets and completing event recorded with the award."""
    user = await _member(session, external_id)
    awards = await badges_repo.awards_of(session, user.id)
    keys = {b.id: b.key for b in await badges_repo.list_all(session)}
    return [
        AwardEvidence(
            award_id=a.id,
            badge=keys.get(a.badge_id, "?"),
            awarded_at=a.awarded_at,
            source=a.source,
            event_id=a.event_id,
            evidence=a.evidence,
        )
        for a in awards
    ]


async def stats(session: AsyncSession, settings: Settings, key: str, days: int = 30) -> BadgeStats:
    badge = await get(session, key)
    holders = (await badges_repo.holder_counts(session)).get(badge.id, 0)
    members = await badges_repo.member_count(session)
    first, last = await badges_repo.award_times(session, badge.id)
    # The last `days` dates of the program calendar, today included, each whole: from the local midnight that
    # starts the first of them (not this instant `days` days ago, which counted part of an extra, earliest date).
    since, _ = ordinal_bounds("day", period_ordinal("day", utcnow(), settings.tz) - (days - 1), settings.tz)
    per_day = Counter(
        t.astimezone(settings.tz).date().isoformat() for t in await badges_repo.award_instants(session, badge.id, since)
    )
    return BadgeStats(
        key=key,
        holders=holders,
        awards=await badges_repo.award_count(session, badge.id),
        members=members,
        rarity=holders / members if members else 0.0,
        first_awarded_at=first,
        last_awarded_at=last,
        awards_per_day=[{"date": d, "count": n} for d, n in sorted(per_day.items())],
    )


async def list_admin(session: AsyncSession, status: str | None) -> Sequence[Badge]:
    return await badges_repo.list_all(session, status)
