"""Folding a login-only member into the integrator's member, racing the member's own writes and another sync
(PostgreSQL: SQLite runs one writer at a time)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, text

from app.challenges import service as challenges_service
from app.challenges.schemas import ChallengeCreate
from app.models import User
from app.notifications import repository as notifications_repo
from tests.api import ADMIN
from tests.challenges.conftest import step


async def test_consent_the_member_reports_while_the_fold_runs_moves_with_them(
    app: FastAPI, client: httpx.AsyncClient, login: Any
) -> None:
    """A consent report for the login-only member is being written (not committed) when the CRM's sync folds
    that member: the fold waits for it and moves it, rather than deleting it with the login-only row."""
    await client.put("/v1/users/M-1", json={"nickname": "x"}, headers=ADMIN)
    await login(openid="o-race")
    async with app.state.db.sessionmaker() as report:
        await report.begin()
        uid = (await report.execute(select(User.id).where(User.openid == "o-race"))).scalar_one()
        # What POST /v1/me/subscriptions writes, held open:
        assert await notifications_repo.record_report(report, uid, "r-1", {"tmpl": "accept"}, datetime.now(UTC))
        await notifications_repo.add_result(report, uid, "tmpl", "accept", datetime.now(UTC))
        fold = asyncio.create_task(client.put("/v1/users/M-1", json={"openid": "o-race"}, headers=ADMIN))
        await asyncio.sleep(0.5)
        assert not fold.done()  # waiting for the report
        await report.commit()
    r = await fold
    assert r.status_code == 200, r.text
    async with app.state.db.sessionmaker() as session:
        member = (await session.execute(select(User.id).where(User.external_id == "M-1"))).scalar_one()
        credits = (await session.execute(
            text("SELECT template_id, credits FROM subscription_credits WHERE user_id = :u"), {"u": member})).all()
        reports = (await session.execute(
            text("SELECT count(*) FROM subscription_reports WHERE user_id = :u"), {"u": member})).scalar_one()
    assert [tuple(c) for c in credits] == [("tmpl", 1)] and reports == 1


async def test_two_syncs_of_one_openid_for_two_members_fold_once_and_refuse_the_other(
    client: httpx.AsyncClient, login: Any
) -> None:
    for ext in ("M-A", "M-B"):
        await client.put(f"/v1/users/{ext}", json={"nickname": ext}, headers=ADMIN)
    await login(openid="o-dup")
    a, b = await asyncio.gather(
        client.put("/v1/users/M-A", json={"openid": "o-dup"}, headers=ADMIN),
        client.put("/v1/users/M-B", json={"openid": "o-dup"}, headers=ADMIN),
    )
    assert sorted([a.status_code, b.status_code]) == [200, 409], (a.text, b.text)
    assert (a if a.status_code == 409 else b).json()["error"]["code"] == "openid_conflict"


async def test_a_challenge_saved_while_the_ladder_is_replaced_never_requires_a_level_that_is_gone(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ladder = (await client.get("/v1/admin/badge-levels", headers=ADMIN)).json()
    gold = ladder[1]["name"]
    async with app.state.db.sessionmaker() as saving:
        await saving.begin()
        # POST /v1/admin/challenges in flight: its min_level has been checked, not committed yet
        await challenges_service.create(saving, ChallengeCreate.model_validate(
            {"key": "vip", "title": "VIP", "steps": [step("Buy", "purchase")], "eligibility": {"min_level": gold}}))
        put = asyncio.create_task(client.put(
            "/v1/admin/badge-levels", json=[lv for lv in ladder if lv["name"] != gold], headers=ADMIN))
        await asyncio.sleep(0.5)
        assert not put.done()  # the ladder waits for the challenge
        await saving.commit()
    r = await put
    assert r.status_code == 409 and r.json()["error"]["code"] == "level_in_use", r.text
