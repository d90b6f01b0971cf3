"""`rank_improved`: entering the top 10 or climbing enough places, once a day per board, never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import LeaderboardRankSnapshot, OutboxMessage
from app.notifications import rank_improved
from app.worker import runner
from tests.api import ADMIN, event
from tests.leaderboards.helpers import make_board
from tests.notifications.conftest import Kit, Member

BOARD = "top-spenders"


class Board:
    """An active all-time spend board (one period, so the tests do not depend on the calendar) and its members."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit

    async def setup(self, fillers: int) -> None:
        await make_board(self.kit.client, ADMIN, BOARD, period="all_time", dimensions=[])
        # Fillers spend 100, 200, … so their ranks are fixed: the one who spent 100·k is ranked fillers − k + 1.
        for k in range(1, fillers + 1):
            r = await self.kit.client.put(f"/v1/users/F{k:03d}", json={"nickname": f"f{k}"}, headers=ADMIN)
            assert r.status_code in (200, 201), r.text
            await self.buy(f"F{k:03d}", 100 * k)

    async def buy(self, who: str, amount: float) -> None:
        await event(self.kit.client, who, "purchase", datetime.now(UTC), amount=amount)

    async def run(self, now: datetime | None = None) -> int:
        async with self.kit.app.state.db.sessionmaker() as s, s.begin():
            return await rank_improved.check(s, self.kit.settings, now=now)

    async def rank(self, m: Member) -> int:
        r = await self.kit.client.get(f"/v1/leaderboards/{BOARD}", headers=m.headers)
        assert r.status_code == 200, r.text
        return int(r.json()["me"]["rank"])

    async def told(self, m: Member, lang: str = "en") -> list[dict[str, Any]]:
        await self.kit.fanout()
        r = await self.kit.client.get("/v1/me/notifications", headers={**m.headers, "Accept-Language": lang})
        return [n for n in r.json()["items"] if n["kind"] == "rank_improved"]


@pytest.fixture
def board(kit: Kit) -> Board:
    return Board(kit)


def test_a_climb_is_worth_telling_from_the_worst_rank_since_the_last_notification() -> None:
    assert rank_improved.decide(12, 10, None, True, 5) == (12, True)  # entered the top 10
    assert rank_improved.decide(10, 9, 11, True, 5) == (11, True)  # … from an earlier 11
    assert rank_improved.decide(9, 3, 9, True, 5) == (9, True)  # 6 places inside the top 10
    assert rank_improved.decide(9, 5, 9, True, 5) == (9, False)
    assert rank_improved.decide(20, 16, None, True, 5) == (20, False)
    assert rank_improved.decide(16, 15, 20, True, 5) == (20, True)  # small climbs add up
    assert rank_improved.decide(30, 25, 20, True, 5) == (30, True)  # slid down while idle, then climbed 5
    assert rank_improved.decide(5, 25, 5, False, 5) == (25, False)  # a refund is never "moved up"


@pytest.mark.sqlite_too
async def test_entering_the_top_ten_is_told_once_in_both_languages(kit: Kit, board: Board) -> None:
    await board.setup(fillers=11)
    m = await kit.member("CLIMBER")
    await board.buy("CLIMBER", 50)
    assert await board.rank(m) == 12
    assert await board.run() == 0  # first sighting: a baseline only
    await board.buy("CLIMBER", 200)  # 250: above 200 and 100 → 10th
    assert await board.rank(m) == 10
    assert await board.run() == 1
    assert await board.run() == 0
    (n,) = await board.told(m)
    assert n["title"] == "You moved up" and n["body"] == "You are now #10 on “Top Spenders”"
    assert n["params"]["rank"] == 10 and n["params"]["previous_rank"] == 12 and n["params"]["board"] == BOARD
    (zh,) = await board.told(m, "zh-CN")
    assert zh["body"] == "你在「Top Spenders」升至第 10 名"
    assert len(await board.told(m)) == 1


@pytest.mark.sqlite_too
async def test_a_newcomer_straight_into_the_top_ten_is_told_but_not_one_further_down(
    kit: Kit, board: Board, backend: str
) -> None:
    await board.setup(fillers=12)
    assert await board.run() == 0  # the check now follows the board's period
    star, later = await kit.member("STAR"), await kit.member("LATER")
    await board.buy("STAR", 5000)  # first seen at #1: entered the top 10 from off the board
    await board.buy("LATER", 50)  # first seen at #14: a baseline only
    assert await board.run() == 1
    (n,) = await board.told(star)
    assert (n["params"]["rank"], n["params"]["previous_rank"]) == (1, None)
    assert n["body"] == "You are now #1 on “Top Spenders”"
    assert await board.told(later) == []
    assert await board.run() == 0


async def test_a_newcomer_on_a_board_of_ten_or_fewer_is_not_told(kit: Kit, board: Board) -> None:
    await board.setup(fillers=5)
    assert await board.run() == 0
    m = await kit.member("SIXTH")
    await board.buy("SIXTH", 5000)
    assert await board.run() == 0 and await board.told(m) == []


async def test_enough_places_outside_the_top_ten_notify_and_fewer_do_not_until_they_add_up(
    kit: Kit, board: Board
) -> None:
    await board.setup(fillers=25)
    big, small = await kit.member("BIG"), await kit.member("SMALL")
    await board.buy("BIG", 40)
    await board.buy("SMALL", 30)
    assert (await board.rank(big), await board.rank(small)) == (26, 27)
    assert await board.run() == 0
    await board.buy("BIG", 510)  # 550: passes 100…500 → 21st, 5 places up (6 counting SMALL, who passed 40 too)
    await board.buy("SMALL", 290)  # 320: passes 100…300 and BIG's old 40 → 3 places up, still behind BIG
    assert (await board.rank(big), await board.rank(small)) == (21, 24)
    assert await board.run() == 1
    assert len(await board.told(big)) == 1 and await board.told(small) == []
    await board.buy("SMALL", 200)  # 520: 2 more places (passing 400, 500) — 5 since its baseline
    assert await board.rank(small) == 22
    assert await board.run() == 1
    (n,) = await board.told(small)
    assert (n["params"]["previous_rank"], n["params"]["rank"], n["params"]["places"]) == (27, 22, 5)


@pytest.mark.sqlite_too
async def test_a_second_climb_the_same_day_waits_for_the_next_day(kit: Kit, board: Board) -> None:
    await board.setup(fillers=30)
    m = await kit.member("DAILY")
    await board.buy("DAILY", 10)
    # Noon yesterday in program time: "today" cannot end during the test, and the job's clock is not ahead of the
    # events' times (the check looks at scores that went up since its previous run).
    local = datetime.now(UTC).astimezone(kit.settings.tz) - timedelta(days=1)
    now = local.replace(hour=12, minute=0, second=0, microsecond=0).astimezone(UTC)
    assert await board.run(now) == 0
    await board.buy("DAILY", 600)  # 610 → 25th of 31
    assert await board.run(now) == 1
    await board.buy("DAILY", 1000)  # 1610 → 15th: 10 more places, same day
    assert await board.run(now + timedelta(minutes=15)) == 0
    assert len(await board.told(m)) == 1
    tomorrow = now + timedelta(days=1)
    assert await board.run(tomorrow) == 0  # held back climbs are told with the next climb
    await board.buy("DAILY", 100)  # 1710 → 14th: counted from the 25th it held when last told
    assert await board.run(tomorrow) == 1
    assert await board.run(tomorrow) == 0
    latest = (await board.told(m))[0]
    assert (latest["params"]["previous_rank"], latest["params"]["rank"]) == (25, 14)
    assert len(await board.told(m)) == 2


async def test_a_member_who_slid_down_while_idle_is_measured_from_where_they_really_were(
    kit: Kit, board: Board
) -> None:
    await make_board(kit.client, ADMIN, BOARD, period="all_time", dimensions=[])
    m = await kit.member("EARLY")
    await board.buy("EARLY", 50)
    assert await board.run() == 0  # baseline: 1st of 1
    for k in range(1, 16):
        await kit.client.put(f"/v1/users/L{k:03d}", json={"nickname": f"l{k}"}, headers=ADMIN)
        await board.buy(f"L{k:03d}", 100 * k)
    assert await board.rank(m) == 16
    # The newcomers are first seen on a followed period: the ten who went straight into the top 10 are told;
    # EARLY's score did not move.
    assert await board.run() == 10
    await board.buy("EARLY", 800)  # 850 → 8th
    assert await board.run() == 1
    (n,) = await board.told(m)
    assert (n["params"]["previous_rank"], n["params"]["rank"]) == (16, 8)


async def test_the_wechat_template_of_the_kind_is_filled(kit: Kit, board: Board) -> None:
    await kit.template("rank_improved", "tmpl-rank", page="pages/leaderboards/index",
                       fields={"thing1": "{board_name}", "number2": "{rank}", "time3": "{time}"})
    await board.setup(fillers=11)
    m = await kit.member("WX")
    await board.buy("WX", 50)
    assert await board.run() == 0
    await board.buy("WX", 1000)  # 1050 → 2nd
    assert await board.rank(m) == 2
    assert await board.run() == 1
    await kit.fanout()
    (d,) = [d for d in await kit.deliveries() if d.kind == "rank_improved"]
    assert d.template_id == "tmpl-rank" and d.data["thing1"] == "Top Spenders" and d.data["number2"] == "2"


@pytest.mark.sqlite_too
async def test_the_job_runs_through_the_runner_and_forgets_archived_boards(kit: Kit, board: Board) -> None:
    from app import jobs  # noqa: F401  (registers the jobs)

    job = {j.name: j for j in runner.JOBS}["notifications.rank_improved"]
    await board.setup(fillers=3)
    sm = kit.app.state.db.sessionmaker
    assert await runner.run_job_once(sm, kit.settings, job) == 0
    async with sm() as s:
        assert len((await s.execute(select(LeaderboardRankSnapshot))).all()) == 3
    r = await kit.client.patch(f"/v1/admin/leaderboards/{BOARD}", json={"status": "archived"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert await runner.run_job_once(sm, kit.settings, job) == 0
    async with sm() as s:
        assert (await s.execute(select(LeaderboardRankSnapshot))).all() == []
        assert (await s.execute(
            select(OutboxMessage).where(OutboxMessage.kind == rank_improved.OUTBOX_KIND)
        )).all() == []
