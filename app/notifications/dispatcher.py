"""WeChat dispatcher: claim due deliveries, bundle them, spend a consent credit, send outside any
transaction, record the attempt and follow WeChat's errcode table.

Shape of one run (three short transactions and the sends between them):

1. claim — skip if paused (45009) or in quiet hours (then due rows move to the end of quiet hours); claim due
   `pending` rows with FOR UPDATE SKIP LOCKED; group one member's rows of one kind into a bundle; take one
   credit (`UPDATE … SET credits = credits - 1 WHERE credits > 0`) — none → `no_consent`, no call; mark the
   bundle `sending` with a lease; commit.
2. send — through the gateway (its own threads, timeouts, one token refresh on 40001/40014/42001).
3. record — one attempt row per call; only rows still `sending` are updated, so a row is never sent twice:
   a retry needs `pending`, which only an error sets.

A lease that expires means the worker died mid-send and the outcome is unknown: WeChat has no idempotency
key, so such rows are marked `failed` rather than resent blindly.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.challenges import progress as challenge_progress
from app.challenges import service as challenges_service
from app.config import Settings
from app.integrations.wechat import RateLimited, WeChatError, WeChatGateway, WeChatUnavailable
from app.integrations.wechat.errors import TOKEN_ERRCODES
from app.kit.clock import utcnow
from app.kit.dialect import insert_for, skip_locked
from app.models import Challenge, DispatchPause, Notification, NotificationTemplate, User, WeChatAttempt, WeChatDelivery
from app.notifications import fields as wechat_fields
from app.notifications import quiet
from app.notifications import repository as repo
from app.notifications.fanout import wechat_data
from app.notifications.kinds import TITLE_PARAM, summary

log = logging.getLogger("laurel.notifications.wechat")

CHANNEL = "wechat"
BATCH = 200
NO_CONSENT = 43101
DAILY_QUOTA = 45009
CONFIG_ERRCODES = frozenset({47003, 40037, 41030, 40003})  # bad value, template id, page, openid
RETRY_SECONDS = (5, 30, 120, 600)  # after the 1st, 2nd, 3rd, later transient failure


@dataclass
class Bundle:
    lead_id: int
    ids: list[int]
    user_id: int
    openid: str
    kind: str
    template: NotificationTemplate
    data: dict[str, str]


@dataclass
class Outcome:
    bundle: Bundle
    msgid: str | None = None
    error: WeChatError | None = None
    ok: bool = field(default=False)


STALE_AFTER = timedelta(hours=48)  # rate limits and the daily quota are waited out for at most this long


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=RETRY_SECONDS[min(max(attempts, 1), len(RETRY_SECONDS)) - 1])


async def _paused_until(session: AsyncSession, now: datetime) -> datetime | None:
    pause = await session.get(DispatchPause, CHANNEL)
    return pause.until if pause is not None and pause.until > now else None


async def pause(session: AsyncSession, until: datetime, reason: str) -> None:
    stmt = insert_for(session, DispatchPause.__table__).values(  # type: ignore[arg-type]
        channel=CHANNEL, until=until, reason=reason[:500]
    )
    await session.execute(stmt.on_conflict_do_update(index_elements=["channel"], set_={"until": until,
                                                                                       "reason": reason[:500]}))


async def _expire_leases(session: AsyncSession, now: datetime) -> None:
    await session.execute(
        update(WeChatDelivery)
        .where(WeChatDelivery.status == "sending", WeChatDelivery.lease_until < now)
        .values(status="failed", lease_until=None,
                last_errmsg="send outcome unknown (dispatcher stopped mid-send); not resent to avoid a duplicate")
        .execution_options(synchronize_session=False)
    )


async def _bundle_data(session: AsyncSession, template: NotificationTemplate, kind: str,
                       rows: list[WeChatDelivery]) -> dict[str, str]:
    """One message for several notifications: the newest one's values, its title replaced by a summary."""
    if len(rows) == 1:
        return dict(rows[0].data)
    latest = await session.get(Notification, rows[-1].notification_id)
    params: dict[str, Any] = dict(latest.params) if latest else {}
    params.pop("names", None)
    text = summary(kind, len(rows), template.lang)
    params.update({TITLE_PARAM[kind]: text, "summary": text, "count": len(rows)})
    try:
        return wechat_data(template, kind, params)
    except wechat_fields.FieldInvalid:
        return dict(rows[-1].data)


def _still_open(ch: Challenge | None, now: datetime) -> bool:
    """Whether members can still join the challenge a `challenge_available` message invites them to."""
    return (ch is not None and ch.status == "published"
            and challenge_progress.open_state(challenges_service.schedule_of(ch), now) != "ended")


async def _claim(session: AsyncSession, settings: Settings, limit: int, now: datetime) -> list[Bundle]:
    if await _paused_until(session, now):
        return []
    await _expire_leases(session, now)
    # However it was held back (rate limits, the daily quota, quiet hours), a message not sent within two days of
    # being queued is no longer news.
    await session.execute(
        update(WeChatDelivery)
        .where(WeChatDelivery.status == "pending", WeChatDelivery.created_at < now - STALE_AFTER)
        .values(status="failed", last_errmsg=f"not sent within {STALE_AFTER} of being queued", bundle_id=None,
                bundle_size=1)
        .execution_options(synchronize_session=False)
    )
    hold = quiet.quiet_until(now, settings.quiet_hours, settings.tz)
    if hold is not None:
        await session.execute(
            update(WeChatDelivery)
            .where(WeChatDelivery.status == "pending", WeChatDelivery.next_attempt_at < hold)
            .values(next_attempt_at=hold)
            .execution_options(synchronize_session=False)
        )
        return []
    rows = (
        await session.execute(
            select(WeChatDelivery)
            .where(WeChatDelivery.status == "pending", WeChatDelivery.next_attempt_at <= now)
            .order_by(WeChatDelivery.id)
            .limit(limit)
            .with_for_update(**skip_locked(session))
        )
    ).scalars().all()
    if not rows:
        return []
    # No longer true by now (the consent credit is kept): a badge revoked, a challenge "ending soon" that is over.
    revoked = await repo.revoked_awards(session, rows)
    over = await repo.past_deadlines(session, rows, now)
    closed = {d for d, ch in (await repo.announced_challenges(session, rows)).items() if not _still_open(ch, now)}
    for r in rows:
        if r.id in revoked:
            r.status, r.last_errmsg = "dropped", "badge revoked before the message was sent"
        elif r.id in over:
            r.status, r.last_errmsg = "dropped", "the challenge had ended or was completed before the message was sent"
        elif r.id in closed:
            r.status, r.last_errmsg = "dropped", "the challenge was no longer open when the message was due"
    rows = [r for r in rows if r.id not in revoked and r.id not in over and r.id not in closed]
    templates = {t.kind: t for t in await repo.templates(session, enabled_only=True)}
    openids = dict((await session.execute(
        select(User.id, User.openid).where(User.id.in_({r.user_id for r in rows}))
    )).all())
    groups: dict[tuple[int, str, str], list[WeChatDelivery]] = defaultdict(list)
    for r in rows:
        groups[(r.user_id, r.kind, r.template_id)].append(r)
    lease = now + timedelta(seconds=settings.wechat_timeout_seconds * 4 + 60)
    bundles = []
    for (user_id, kind, template_id), group in groups.items():
        template = templates.get(kind)
        openid = openids.get(user_id)
        problem = None
        if template is None or template.template_id != template_id:
            problem = "template no longer mapped or disabled"
        elif not openid:
            problem = "member has no WeChat openid"
        if problem:
            for r in group:
                r.status, r.last_errmsg = "dropped", problem
            continue
        assert template is not None and openid
        if not await repo.take_credit(session, user_id, template_id):
            for r in group:
                r.status, r.last_errmsg = "no_consent", "no subscription credit"
            continue
        lead = group[0]
        for r in group:
            r.status, r.lease_until = "sending", lease
            r.bundle_id = lead.id if r is not lead else None
        lead.bundle_size = len(group)
        data = await _bundle_data(session, template, kind, group)
        bundles.append(Bundle(lead.id, [r.id for r in group], user_id, openid, kind, template, data))
    return bundles


async def _send(gateway: WeChatGateway, bundle: Bundle, gate: asyncio.Semaphore) -> Outcome:
    t = bundle.template
    async with gate:
        try:
            msgid = await gateway.asend_subscribe_message(
                bundle.openid, t.template_id, bundle.data, page=t.page, miniprogram_state=t.miniprogram_state,
                lang=t.lang,
            )
        except WeChatError as exc:
            return Outcome(bundle, error=exc)
        except Exception as exc:  # a bug or an unexpected library error: retry like a network failure
            log.exception("unexpected error sending WeChat message")
            return Outcome(bundle, error=WeChatUnavailable(None, f"{type(exc).__name__}: {exc}"))
    return Outcome(bundle, msgid=msgid, ok=True)


def _classify(error: WeChatError) -> str:
    if error.errcode == NO_CONSENT:
        return "no_consent"
    if error.errcode in CONFIG_ERRCODES:
        return "config_error"
    if error.errcode == DAILY_QUOTA:
        return "quota"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, WeChatUnavailable) or error.errcode in TOKEN_ERRCODES:
        return "transient"
    return "rejected"


async def _record(session: AsyncSession, settings: Settings, outcome: Outcome, now: datetime) -> None:
    b = outcome.bundle
    rows = (
        await session.execute(
            select(WeChatDelivery)
            .where(or_(WeChatDelivery.id == b.lead_id, WeChatDelivery.bundle_id == b.lead_id),
                   WeChatDelivery.status == "sending")
            .with_for_update()
        )
    ).scalars().all()
    error = outcome.error
    verdict = "sent" if error is None else _classify(error)
    # Every delivery the call carried gets the attempt in its own history (the lead's is kept even when the
    # lease expired), so each one's transient failures can be counted on their own.
    for delivery_id in dict.fromkeys([b.lead_id, *(r.id for r in rows)]):
        session.add(WeChatAttempt(
            delivery_id=delivery_id, attempted_at=now, outcome=verdict,
            errcode=None if error is None else error.errcode, errmsg=None if error is None else error.errmsg[:500],
            msgid=outcome.msgid, bundle_size=len(b.ids),
        ))
    if not rows:
        return  # lease expired and the rows were settled meanwhile
    for r in rows:
        r.attempts += 1
        r.lease_until = None
        r.last_errcode = None if error is None else error.errcode
        r.last_errmsg = None if error is None else error.errmsg[:500]
    if error is None:
        for r in rows:
            r.status, r.msgid, r.sent_at = "sent", outcome.msgid, now
        return
    if verdict == "no_consent":
        # 43101: the member withdrew consent (or it ran out): credits to zero, the message dropped (the inbox has it).
        await repo.zero_credits(session, b.user_id, b.template.template_id)
        for r in rows:
            r.status = "dropped"
        return
    # Every other failure gives the credit back: WeChat did not deliver, so consent was not used.
    await repo.refund_credit(session, b.user_id, b.template.template_id)
    if verdict in ("config_error", "rejected"):
        log.error(
            "WeChat refused template %s for %s (configuration error, dropped): errcode=%s %s",
            b.template.template_id, b.kind, error.errcode, error.errmsg,
        )
        for r in rows:
            r.status = "dropped"
        return
    if verdict == "quota":
        until = quiet.next_midnight(now, settings.tz)
        await pause(session, until, f"45009 daily quota reached: {error.errmsg}")
        log.error("WeChat daily quota reached; all sends paused until %s", until.isoformat())
        next_at = until
    elif verdict == "rate_limited":
        next_at = now + timedelta(seconds=60 + random.uniform(0, 10))
    else:
        # Only transient failures count towards giving up and set the backoff, each delivery's own (a bundle may
        # carry a fresh delivery next to one that has failed before): a delivery that waited out rate limits or
        # the daily quota has not failed any more often for it.
        await session.flush()  # the attempts just recorded count too
        failures = await repo.transient_failures(session, [r.id for r in rows])
        spent = [r for r in rows if failures.get(r.id, 0) >= settings.wechat_max_attempts]
        for r in spent:
            r.status, r.bundle_id, r.bundle_size = "failed", None, 1
            log.warning("WeChat delivery %s failed after %s transient failures: %s", r.id, failures[r.id], error)
        left = [r for r in rows if r not in spent]
        if left:
            # The rest stay one message: one retry time for all (the soonest), so they are sent together again
            # for one credit rather than split up by their different backoffs.
            next_at = now + min(retry_delay(failures.get(r.id, 0)) for r in left)
            for r in left:
                r.status, r.next_attempt_at, r.bundle_id, r.bundle_size = "pending", next_at, None, 1
        return
    for r in rows:  # back to the queue; rows may be bundled differently next time
        if now - r.created_at > STALE_AFTER:
            # Waits do not count as failures, but a message still held back after two days is no longer news.
            r.status, r.bundle_id, r.bundle_size = "failed", None, 1
            r.last_errmsg = f"still waiting after {STALE_AFTER}: {error.errmsg}"[:500]
            continue
        r.status, r.next_attempt_at, r.bundle_id, r.bundle_size = "pending", next_at, None, 1


async def dispatch_wechat_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    gateway: WeChatGateway,
    *,
    limit: int = BATCH,
    now: datetime | None = None,
) -> int:
    """Claim, send and record one batch; returns the number of WeChat calls made."""
    now = now or utcnow()
    async with sessionmaker() as session, session.begin():
        bundles = await _claim(session, settings, limit, now)
    if not bundles:
        return 0
    gate = asyncio.Semaphore(settings.wechat_dispatch_concurrency)
    outcomes = await asyncio.gather(*(_send(gateway, b, gate) for b in bundles))
    async with sessionmaker() as session, session.begin():
        for outcome in outcomes:
            await _record(session, settings, outcome, now)
    return len(bundles)
