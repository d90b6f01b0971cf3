"""Scheduler checks: a joined challenge about to end, a challenge published; running twice sends nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from app.models import Challenge, ChallengeParticipation, User
from app.notifications import scheduler
from tests.api import ADMIN
from tests.fakes.wechat_server import FakeWeChat
from tests.notifications.conftest import Kit

NOW = datetime.now(UTC)


async def _challenge(kit: Kit, key: str, **fields: object) -> int:
    async with kit.app.state.db.sessionmaker() as s, s.begin():
        ch = Challenge(key=key, title=f"挑战{key}", steps=[{"title": "step", "event": "visit", "threshold": 1}],
                       status="published", published_at=NOW - timedelta(hours=1),
                       **{"eligibility": {}, "ends_at": NOW + timedelta(days=3), **fields})
        s.add(ch)
        await s.flush()
        return ch.id


async def _user_id(kit: Kit, external_id: str) -> int:
    async with kit.app.state.db.sessionmaker() as s:
        return (await s.execute(select(User.id).where(User.external_id == external_id))).scalar_one()


async def _run(kit: Kit, fn: object, now: datetime) -> int:
    async with kit.app.state.db.sessionmaker() as s, s.begin():
        return await fn(s, kit.settings, now=now)  # type: ignore[operator,no-any-return]


async def test_a_joined_challenge_ending_within_the_window_is_announced_once(kit: Kit) -> None:
    await kit.template("challenge_expiring", "tmpl-expiring", fields={"thing1": "{challenge_name}",
                                                                      "time2": "{deadline}"})
    m, later = await kit.member(), await kit.member()
    cid = await _challenge(kit, "week")
    async with kit.app.state.db.sessionmaker() as s, s.begin():
        for who, hours in ((m, 5), (later, 30)):
            uid = await _user_id(kit, who.external_id)
            s.add(ChallengeParticipation(challenge_id=cid, instance_key="once", user_id=uid, status="active",
                                         deadline=NOW + timedelta(hours=hours), progress=[{}]))
    assert await _run(kit, scheduler.challenge_expiring, NOW) == 1
    assert await _run(kit, scheduler.challenge_expiring, NOW + timedelta(minutes=10)) == 0
    items = (await kit.client.get("/v1/me/notifications", headers={**m.headers, "Accept-Language": "en"})).json()
    (n,) = items["items"]
    assert n["kind"] == "challenge_expiring" and n["title"] == "Challenge ending soon" and "挑战week" in n["body"]
    assert (await kit.client.get("/v1/me/notifications", headers=later.headers)).json()["total"] == 0
    (d,) = await kit.deliveries()
    assert d.kind == "challenge_expiring" and d.data["thing1"] == "挑战week"


async def test_a_published_challenge_is_announced_once_to_eligible_members(kit: Kit) -> None:
    gold, plain = await kit.member("GOLD"), await kit.member("PLAIN")
    await kit.client.put("/v1/users/GOLD", json={"tier": "gold"}, headers=ADMIN)
    await _challenge(kit, "vip", eligibility={"tiers": ["gold"]})
    await _challenge(kit, "all")
    assert await _run(kit, scheduler.challenge_available, NOW) == 3  # vip → GOLD; all → both
    assert await _run(kit, scheduler.challenge_available, NOW) == 0
    got = {m.external_id: sorted(n["params"]["challenge"] for n in
                                 (await kit.client.get("/v1/me/notifications", headers=m.headers)).json()["items"])
           for m in (gold, plain)}
    assert got == {"GOLD": ["all", "vip"], "PLAIN": ["all"]}



async def test_a_challenge_published_before_it_starts_is_announced_when_it_opens_not_before(kit: Kit) -> None:
    """"A new challenge is open, come and join" sent at publication, days before `starts_at`, led members to a join
    that answered 409 challenge_not_started, and nothing was sent when it did open."""
    m = await kit.member()
    starts = NOW + timedelta(days=10)  # published more than ANNOUNCE_WITHIN before it opens
    await _challenge(kit, "later", starts_at=starts, ends_at=starts + timedelta(days=30))
    assert await _run(kit, scheduler.challenge_available, NOW) == 0
    assert await _run(kit, scheduler.challenge_available, NOW + timedelta(days=5)) == 0
    assert (await kit.client.get("/v1/me/notifications", headers=m.headers)).json()["total"] == 0
    assert await _run(kit, scheduler.challenge_available, starts + timedelta(seconds=5)) == 1
    assert await _run(kit, scheduler.challenge_available, starts + timedelta(minutes=1)) == 0
    (n,) = (await kit.client.get("/v1/me/notifications", headers=m.headers)).json()["items"]
    assert n["kind"] == "challenge_available" and n["params"]["challenge"] == "later"


async def test_an_expiring_warning_held_until_after_the_deadline_is_not_sent(kit: Kit, wechat: FakeWeChat) -> None:
    """"Ends at 23:59, finish it in time", queued at 22:30 and held by quiet hours, went out at 08:00 the next
    morning, for a challenge already over; one completed meanwhile was urged on too. Neither spends the credit."""
    settings = kit.settings.model_copy(update={"quiet_hours": "22:00-08:00"})
    await kit.template("challenge_expiring", "tmpl-expiring", fields={"thing1": "{challenge_name}",
                                                                      "time2": "{deadline}"})
    late, done, fine = await kit.member(), await kit.member(), await kit.member()
    for m in (late, done, fine):
        await kit.credit(m, "tmpl-expiring")
    tz = settings.tz
    night = datetime.combine(NOW.astimezone(tz).date(), time(22, 30), tz)
    if night <= NOW:
        night += timedelta(days=1)
    cid = await _challenge(kit, "daily", ends_at=night + timedelta(days=3))
    async with kit.app.state.db.sessionmaker() as s, s.begin():
        for who, deadline in ((late, night + timedelta(hours=1, minutes=29)), (done, night + timedelta(hours=20)),
                              (fine, night + timedelta(hours=20))):
            uid = await _user_id(kit, who.external_id)
            s.add(ChallengeParticipation(challenge_id=cid, instance_key="once", user_id=uid, status="active",
                                         deadline=deadline, progress=[{}]))
    assert await _run(kit, scheduler.challenge_expiring, night) == 3
    assert await kit.dispatch(now=night, settings=settings) == 0  # quiet hours
    async with kit.app.state.db.sessionmaker() as s, s.begin():
        p = (await s.execute(select(ChallengeParticipation).where(
            ChallengeParticipation.user_id == await _user_id(kit, done.external_id)))).scalar_one()
        p.status = "completed"
    morning = (night + timedelta(days=1)).replace(hour=8, minute=1)
    assert await kit.dispatch(now=morning, settings=settings) == 1
    assert [s["touser"] for s in wechat.sent] == [fine.openid]
    assert [await kit.credits(m, "tmpl-expiring") for m in (late, done, fine)] == [1, 1, 0]
    statuses = sorted(d.status for d in await kit.deliveries())
    assert statuses == ["dropped", "dropped", "sent"]
    # The inbox keeps them.
    assert (await kit.client.get("/v1/me/notifications", headers=late.headers)).json()["total"] == 1


async def test_a_challenge_announcement_held_until_the_challenge_closed_is_not_sent(
    kit: Kit, wechat: FakeWeChat
) -> None:
    """"A new challenge is open, come and join", held back (quiet hours here; rate limits or the daily quota after a
    fan-out to every member), went out for a challenge that had ended or been archived meanwhile: the join it
    invited to was refused. Such a message is dropped and takes no credit; the bundle keeps what is still open."""
    settings = kit.settings.model_copy(update={"quiet_hours": "22:00-08:00"})
    await kit.template("challenge_available", "tmpl-new", fields={"thing1": "{challenge_name}", "time2": "{time}"})
    m = await kit.member()
    await kit.credit(m, "tmpl-new", n=3)
    tz = settings.tz
    night = datetime.combine(NOW.astimezone(tz).date(), time(22, 30), tz)
    if night <= NOW:
        night += timedelta(days=1)
    await _challenge(kit, "flash", ends_at=night + timedelta(hours=1))
    archived = await _challenge(kit, "gone")
    await _challenge(kit, "week")
    assert await _run(kit, scheduler.challenge_available, night) == 3
    assert await kit.dispatch(now=night, settings=settings) == 0  # quiet hours
    async with kit.app.state.db.sessionmaker() as s, s.begin():
        (await s.get(Challenge, archived)).status = "archived"  # type: ignore[union-attr]
    morning = (night + timedelta(days=1)).replace(hour=8, minute=1)
    assert await kit.dispatch(now=morning, settings=settings) == 1
    assert [s["data"]["thing1"]["value"] for s in wechat.sent] == ["挑战week"]  # alone, not "3个新挑战已开启"
    assert await kit.credits(m, "tmpl-new") == 2
    assert sorted(d.status for d in await kit.deliveries()) == ["dropped", "dropped", "sent"]
