"""Admin contract: validation, lifecycle, progress-safe edits, visibility and join rules, stats."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.challenges.conftest import step

pytestmark = pytest.mark.sqlite_too

ISSUE_EXAMPLE = {
    "key": "complete-profile", "title": "Complete Your Profile", "description": "…", "icon": "icons/profile.png",
    "steps": [{"title": "Upload a profile image", "description": "…", "icon": "icons/img.png",
               "criterion": {"event": "profile.image", "aggregate": "count", "threshold": 1}}],
    "eligibility": {"tiers": ["premium"], "segments": [], "min_level": "Engaged Member", "required_badge": None},
    "schedule": {"type": "one_time", "starts_at": None, "ends_at": None, "recurrence": None, "time_limit_days": None},
    "rewards": {"points_per_step": 5, "bonus_points": 20, "badge": None, "voucher": None},
}


async def test_issue_example_round_trips(
    client: httpx.AsyncClient, admin_headers: dict[str, str], backend: str
) -> None:
    r = await client.post("/v1/admin/challenges", json=ISSUE_EXAMPLE, headers=admin_headers)
    assert r.status_code == 201, r.text
    got = r.json()
    for field in ("key", "title", "description", "icon", "eligibility", "schedule", "rewards"):
        assert got[field] == ISSUE_EXAMPLE[field], field
    assert got["steps"] == ISSUE_EXAMPLE["steps"]  # criteria as posted: threshold 1, no defaults filled in
    again = await client.get("/v1/admin/challenges/complete-profile", headers=admin_headers)
    assert again.json()["steps"] == ISSUE_EXAMPLE["steps"]
    assert json.dumps(again.json()["steps"][0]["criterion"]["threshold"]) == "1"
    assert got["status"] == "draft"
    listed = (await client.get("/v1/admin/challenges", headers=admin_headers)).json()
    assert [c["key"] for c in listed] == ["complete-profile"]
    assert (await client.post("/v1/admin/challenges", json=ISSUE_EXAMPLE, headers=admin_headers)).status_code == 409


async def test_step_window_is_refused_naming_the_field(
    client: httpx.AsyncClient, admin_headers: dict[str, str], backend: str
) -> None:
    body = {**ISSUE_EXAMPLE, "eligibility": {}, "steps": [
        step("ok", "post"), step("weekly", "post", 3, window={"type": "calendar", "unit": "week"})]}
    r = await client.post("/v1/admin/challenges", json=body, headers=admin_headers)
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["error"]["details"]] == ["body.steps.1.criterion.window"]


@pytest.mark.parametrize(("part", "field"), [("schedule", "time_limit_days"), ("rewards", "points_per_step"),
                                             ("rewards", "bonus_points")])
async def test_a_boolean_is_not_a_number_of_days_or_points(
    client: httpx.AsyncClient, admin_headers: dict[str, str], backend: str, part: str, field: str
) -> None:
    # `"time_limit_days": true` was read as a 1-day limit, `"bonus_points": true` as 1 point.
    body = {**ISSUE_EXAMPLE, "eligibility": {}, part: {field: True}}
    r = await client.post("/v1/admin/challenges", json=body, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["error"]["details"]] == [f"body.{part}.{field}"]
    body = {**ISSUE_EXAMPLE, "eligibility": {}}
    assert (await client.post("/v1/admin/challenges", json=body, headers=admin_headers)).status_code == 201
    r = await client.patch("/v1/admin/challenges/complete-profile", json={part: {field: True}}, headers=admin_headers)
    assert r.status_code == 422, r.text


async def test_a_whole_number_written_as_a_float_is_a_number_of_days_or_points(
    client: httpx.AsyncClient, admin_headers: dict[str, str], backend: str
) -> None:
    """JSON has one kind of number: 7.0 (as a Python or spreadsheet integration writes it) is 7, as it is for a
    badge's points or a board's min_group_size. Refusing booleans must not refuse these."""
    body = {**ISSUE_EXAMPLE, "eligibility": {}, "schedule": {"type": "one_time", "time_limit_days": 7.0},
            "rewards": {"points_per_step": 5.0, "bonus_points": 20.0}}
    r = await client.post("/v1/admin/challenges", json=body, headers=admin_headers)
    assert r.status_code == 201, r.text
    r = await client.patch("/v1/admin/challenges/complete-profile", json={"rewards": {"bonus_points": 30.0}},
                           headers=admin_headers)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["schedule"]["time_limit_days"], got["rewards"]["points_per_step"], got["rewards"]["bonus_points"]) \
        == (7, 5, 30)
    r = await client.patch("/v1/admin/challenges/complete-profile", json={"rewards": {"bonus_points": 2.5}},
                           headers=admin_headers)
    assert r.status_code == 422, r.text  # a fraction is still no number of points


async def test_unknown_references_are_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], backend: str
) -> None:
    body = {**ISSUE_EXAMPLE, "eligibility": {"min_level": "Grand Poobah"},
            "rewards": {"badge": "nope", "voucher": "nada"}}
    r = await client.post("/v1/admin/challenges", json=body, headers=admin_headers)
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["error"]["details"]] == [
        "eligibility.min_level", "rewards.badge", "rewards.voucher"]


async def test_drafts_are_invisible_and_join_rules(
    client: httpx.AsyncClient, member: Any, make_challenge: Any, clock: Any, backend: str
) -> None:
    await make_challenge("draft-one", [step("Post", "post")], publish=False)
    await make_challenge("future", [step("Post", "post")], schedule={"starts_at": "2026-12-01T00:00:00+08:00"})
    await make_challenge("past", [step("Post", "post")], schedule={"ends_at": "2026-11-01T00:00:00+08:00"})
    await make_challenge("open", [step("Post", "post")])
    m = await member()
    clock.set("2026-11-20T10:00:00+08:00")
    listed = (await client.get("/v1/challenges", headers=m.headers)).json()
    assert {c["key"]: c["open"] for c in listed} == {"future": False, "open": True}
    assert (await client.get("/v1/challenges/draft-one", headers=m.headers)).status_code == 404
    r = await client.post("/v1/challenges/nope/join", headers=m.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "challenge_not_found"
    r = await client.post("/v1/challenges/future/join", headers=m.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "challenge_not_started"
    r = await client.post("/v1/challenges/past/join", headers=m.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "challenge_closed"
    r = await client.post("/v1/challenges/draft-one/join", headers=m.headers)
    assert r.status_code == 404  # drafts are invisible to members
    assert (await client.post("/v1/challenges/open/join", headers=m.headers)).status_code == 201
    assert (await client.post("/v1/challenges/open/join", headers=m.headers)).status_code == 200


async def test_draft_steps_and_criteria_change_freely(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any, backend: str
) -> None:
    await make_challenge("drafty", [step("Post", "post", 3), step("Comment", "comment", 2)], publish=False)
    r = await client.patch("/v1/admin/challenges/drafty", headers=admin_headers,
                           json={"steps": [step("Post", "post", 4)], "schedule": {"type": "recurring",
                                                                                "recurrence": "weekly"}})
    assert r.status_code == 200, r.text
    assert [s["criterion"]["threshold"] for s in r.json()["steps"]] == [4]
    r = await client.put("/v1/admin/challenges/drafty", headers=admin_headers,
                         json={"title": "Drafty", "steps": [step("Visit", "visit", 2), step("Post", "post", 1)]})
    assert r.status_code == 200, r.text


async def test_a_patch_of_a_nested_object_changes_only_the_fields_it_names(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any, backend: str
) -> None:
    """A partial rewards or eligibility object does not reset the rest: no dropped voucher, no tier-only
    challenge opened to everyone."""
    r = await client.post("/v1/admin/vouchers", headers=admin_headers, json={
        "key": "ten", "name": "10 off", "description": "", "face_value": 10, "validity_days": 30})
    assert r.status_code == 201, r.text
    await make_challenge("p", [step("Post", "post")], schedule={"type": "recurring", "recurrence": "weekly"},
                         rewards={"points_per_step": 5, "bonus_points": 20, "voucher": "ten"},
                         eligibility={"tiers": ["premium"], "min_level": "Engaged Member"})
    r = await client.patch("/v1/admin/challenges/p", headers=admin_headers, json={"rewards": {"bonus_points": 50}})
    assert r.status_code == 200, r.text
    assert r.json()["rewards"] == {"points_per_step": 5, "bonus_points": 50, "badge": None, "voucher": "ten"}
    r = await client.patch("/v1/admin/challenges/p", headers=admin_headers,
                           json={"eligibility": {"segments": ["vip"]}})
    assert r.status_code == 200, r.text
    eligibility = r.json()["eligibility"]
    assert (eligibility["tiers"], eligibility["segments"], eligibility["min_level"]) == (
        ["premium"], ["vip"], "Engaged Member")
    r = await client.patch("/v1/admin/challenges/p", headers=admin_headers, json={"rewards": {"voucher": None}})
    assert r.status_code == 200 and r.json()["rewards"]["voucher"] is None and r.json()["rewards"]["bonus_points"] == 50
    # A schedule field of its own keeps the type and recurrence: no "the schedule type would change" 409.
    r = await client.patch("/v1/admin/challenges/p", headers=admin_headers, json={"schedule": {"time_limit_days": 5}})
    assert r.status_code == 200, r.text
    assert (r.json()["schedule"]["type"], r.json()["schedule"]["recurrence"]) == ("recurring", "weekly")
    assert r.json()["schedule"]["time_limit_days"] == 5
    # The merged object is validated whole, and the error names the field.
    r = await client.patch("/v1/admin/challenges/p", headers=admin_headers, json={"schedule": {"recurrence": None}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"].startswith("body.schedule"), r.text


async def test_published_challenge_refuses_breaking_changes_before_anyone_joins(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any, backend: str
) -> None:
    await make_challenge("fresh", [step("Post", "post", 3), step("Comment", "comment", 2)])
    r = await client.patch("/v1/admin/challenges/fresh", headers=admin_headers,
                           json={"steps": [step("Post", "post", 3)]})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "challenge_in_progress"
    assert "the number of steps would change (2 → 1)" in r.json()["error"]["message"]
    r = await client.put("/v1/admin/challenges/fresh", headers=admin_headers,
                         json={"title": "Fresh", "steps": [step("Post", "post", 5), step("Comment", "comment", 2)]})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["details"] == [{"field": "steps.0.criterion",
                                             "reason": "the criterion of step 1 would change"}]
    r = await client.patch("/v1/admin/challenges/fresh", headers=admin_headers,
                           json={"schedule": {"type": "recurring", "recurrence": "monthly"}})
    assert r.status_code == 409
    # The same criterion spelt out in full is no change; copy and icons still change.
    full = {"event": "post", "where": [], "aggregate": "count", "field": None, "threshold": 3.0}
    r = await client.patch("/v1/admin/challenges/fresh", headers=admin_headers, json={
        "title": "Fresh start", "icon": "i/new.png",
        "steps": [{"title": "Write", "description": "d", "icon": "i/w.png", "criterion": full},
                  step("Reply", "comment", 2)]})
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Fresh start" and r.json()["steps"][0]["title"] == "Write"


async def test_published_edits_keep_progress_safe(
    client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, make_challenge: Any, backend: str
) -> None:
    await make_challenge("edit-me", [step("Post", "post", 3), step("Comment", "comment", 2)])
    m = await member()
    assert (await client.post("/v1/challenges/edit-me/join", headers=m.headers)).status_code == 201
    r = await client.patch("/v1/admin/challenges/edit-me", headers=admin_headers,
                           json={"steps": [step("Post", "post", 3), step("Comment", "comment", 9)]})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "challenge_in_progress"
    assert r.json()["error"]["details"] == [{"field": "steps.1.criterion",
                                             "reason": "the criterion of step 2 would change"}]
    r = await client.patch("/v1/admin/challenges/edit-me", headers=admin_headers,
                           json={"steps": [step("Post", "post", 3)]})
    assert r.status_code == 409
    r = await client.patch("/v1/admin/challenges/edit-me", headers=admin_headers,
                           json={"schedule": {"type": "recurring", "recurrence": "weekly"}})
    assert r.status_code == 409
    # Copy and icons may change.
    new_steps = [{**step("Write 3 posts", "post", 3), "icon": "i/post.png"}, step("Comment twice", "comment", 2)]
    r = await client.put("/v1/admin/challenges/edit-me", headers=admin_headers,
                         json={"title": "Edited", "icon": "i/c.png", "steps": new_steps})
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Edited" and r.json()["steps"][0]["title"] == "Write 3 posts"
    mine = (await client.get("/v1/me/challenges", headers=m.headers)).json()
    assert mine[0]["title"] == "Edited" and mine[0]["steps"][0]["icon"] == "i/post.png"
    assert (await client.delete("/v1/admin/challenges/edit-me", headers=admin_headers)).status_code == 409


async def test_lifecycle_and_delete(
    client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, make_challenge: Any, outbox: Any,
    backend: str,
) -> None:
    await make_challenge("life", [step("Post", "post")], publish=False)
    r = await client.post("/v1/admin/challenges/life/publish", headers=admin_headers)
    assert r.json()["status"] == "published" and r.json()["published_at"]
    m = await member()
    assert (await client.post("/v1/challenges/life/join", headers=m.headers)).status_code == 201
    r = await client.post("/v1/admin/challenges/life/archive", headers=admin_headers)
    assert r.json()["status"] == "archived"
    assert len(await outbox("challenge.expired", m.external_id)) == 1
    assert (await client.post("/v1/admin/challenges/life/publish", headers=admin_headers)).status_code == 409
    assert (await client.post("/v1/challenges/life/join", headers=m.headers)).status_code == 409
    await make_challenge("gone", [step("Post", "post")], publish=False)
    assert (await client.delete("/v1/admin/challenges/gone", headers=admin_headers)).status_code == 204
    assert (await client.get("/v1/admin/challenges/gone", headers=admin_headers)).status_code == 404


async def test_stats(
    client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any, make_challenge: Any,
    clock: Any, backend: str,
) -> None:
    await make_challenge("weekly-duo", [step("Post", "post"), step("Comment", "comment")],
                         schedule={"type": "recurring", "recurrence": "weekly"})
    clock.set("2026-11-16T10:00:00+08:00")
    a, b, c = await member(), await member(), await member()
    for m in (a, b, c):
        assert (await client.post("/v1/challenges/weekly-duo/join", headers=m.headers)).status_code == 201
    await send(a, "post", "2026-11-16T11:00:00+08:00")
    await send(a, "comment", "2026-11-16T12:00:00+08:00")
    await send(b, "post", "2026-11-17T11:00:00+08:00")
    clock.set("2026-11-24T10:00:00+08:00")
    assert (await client.post("/v1/challenges/weekly-duo/join", headers=a.headers)).status_code == 201
    r = await client.get("/v1/admin/challenges/weekly-duo/stats", headers=admin_headers)
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["joined"], s["active"], s["completed"], s["expired"]) == (4, 1, 1, 2)
    assert s["completion_rate"] == 0.25 and s["median_time_to_complete_seconds"] == 7200
    assert [x["reached"] for x in s["steps"]] == [2, 1]
    assert [(x["drop_off"], x["drop_off_rate"]) for x in s["steps"]] == [(2, 0.5), (1, 0.5)]  # per-step drop-off
    assert [(i["instance"], i["current"], i["joined"]) for i in s["instances"]] == [
        ("2026-W48", True, 1), ("2026-W47", False, 3)]
    assert s["instances"][1]["completion_rate"] == 1 / 3  # exact, as /v1/admin/analytics/challenges answers it


async def test_step_drop_off_counts_who_did_the_step_before_but_not_this_one_whatever_the_order(
    client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any, make_challenge: Any,
    clock: Any,
) -> None:
    """Steps can be done in any order ("Complete Your Profile"). The drop-off of step 2 was the difference of two
    counts (did step 1 − did step 2), so a member who did step 1 only and one who did step 2 only cancelled out:
    "0 dropped off" where one member did step 1 and stopped there."""
    await make_challenge("profile-duo", [step("Photo", "profile.image"), step("Bio", "profile.bio")])
    clock.set("2026-11-16T10:00:00+08:00")
    photo_only, bio_only, both = await member(), await member(), await member()
    for m in (photo_only, bio_only, both):
        assert (await client.post("/v1/challenges/profile-duo/join", headers=m.headers)).status_code == 201
    await send(photo_only, "profile.image", "2026-11-16T11:00:00+08:00")
    await send(bio_only, "profile.bio", "2026-11-16T11:00:00+08:00")
    await send(both, "profile.bio", "2026-11-16T11:00:00+08:00")
    await send(both, "profile.image", "2026-11-16T12:00:00+08:00")
    s = (await client.get("/v1/admin/challenges/profile-duo/stats", headers=admin_headers)).json()
    assert [x["reached"] for x in s["steps"]] == [2, 2]
    # Step 1: joined 3, bio_only has not done it. Step 2: of the 2 who did step 1, photo_only has not done it.
    assert [(x["drop_off"], x["drop_off_rate"]) for x in s["steps"]] == [(1, pytest.approx(1 / 3, abs=1e-4)),
                                                                         (1, 0.5)]
    assert [(x["drop_off"], x["drop_off_rate"]) for x in s["instances"][0]["steps"]] == [
        (1, pytest.approx(1 / 3, abs=1e-4)), (1, 0.5)]


async def test_stats_and_the_expiry_job_expire_every_participation_past_its_deadline_not_one_batch(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any, clock: Any, app: Any,
) -> None:
    """Expiry went in one batch of 500 per call: at the end of a week with more participants than that, the stats
    (which promise "active means active now") still counted the rest as active, and the minute job took a minute
    per 500 to send their `challenge.expired`."""
    from datetime import datetime

    from sqlalchemy import insert, select

    from app.challenges import tasks
    from app.models import Challenge, ChallengeParticipation, User

    n = 501
    for key, due in (("big-day", 17), ("big-day-too", 19)):
        await make_challenge(key, [step("Post", "post")], schedule={"type": "one_time", "time_limit_days": 1})
        joined = datetime.fromisoformat("2026-11-16T10:00:00+08:00")
        async with app.state.db.sessionmaker() as s, s.begin():
            cid = (await s.execute(select(Challenge.id).where(Challenge.key == key))).scalar_one()
            uids = (await s.execute(insert(User).returning(User.id),
                                    [{"external_id": f"{key}-{i}", "segments": [], "preferences": {}, "points": 0}
                                     for i in range(n)])).scalars().all()
            await s.execute(insert(ChallengeParticipation), [
                {"challenge_id": cid, "instance_key": "once", "user_id": uid, "status": "active",
                 "joined_at": joined, "deadline": joined.replace(day=due), "steps_done": 0,
                 "progress": [{"state": None, "done_at": None}]} for uid in uids])
    clock.set("2026-11-18T10:00:00+08:00")
    s = (await client.get("/v1/admin/challenges/big-day/stats", headers=admin_headers)).json()
    assert (s["active"], s["expired"]) == (0, n)
    clock.set("2026-11-20T10:00:00+08:00")
    async with app.state.db.sessionmaker() as session, session.begin():
        assert await tasks.expire_participations(session, app.state.settings) == n  # big-day-too's, in one run


async def test_a_badge_a_live_challenge_rewards_or_requires_cannot_be_deleted(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any
) -> None:
    for key in ("finisher", "vip"):
        r = await client.post("/v1/admin/badges", json={"key": key, "name": key, "status": "active",
                                                        "criteria": [{"event": "never.happens", "threshold": 1}]},
                              headers=admin_headers)
        assert r.status_code == 201, r.text
    rewards = {"points_per_step": 0, "bonus_points": 0, "badge": "finisher", "voucher": None}
    await make_challenge("reward", [step("Visit", "visit", 1)], rewards=rewards)
    await make_challenge("gated", [step("Visit", "visit", 1)], publish=False, eligibility={"required_badge": "vip"})
    for badge, challenge in (("finisher", "reward"), ("vip", "gated")):
        r = await client.delete(f"/v1/admin/badges/{badge}", headers=admin_headers)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "badge_in_use"
        assert r.json()["error"]["details"] == {"challenges": [challenge]}
    # Once the challenge is archived, nothing depends on the badge any more.
    assert (await client.post("/v1/admin/challenges/reward/archive", headers=admin_headers)).status_code == 200
    assert (await client.delete("/v1/admin/badges/finisher", headers=admin_headers)).status_code == 204


async def test_my_challenges_says_how_many_there_are_when_the_list_is_cut_short(
    client: httpx.AsyncClient, member: Any, make_challenge: Any, backend: str
) -> None:
    m = await member()
    for i in range(3):
        await make_challenge(f"c{i}", [step("Post", "post")])
        assert (await client.post(f"/v1/challenges/c{i}/join", headers=m.headers)).status_code == 201
    r = await client.get("/v1/me/challenges?limit=2", headers=m.headers)
    assert r.status_code == 200 and len(r.json()) == 2 and r.headers["x-total-count"] == "3"
    r = await client.get("/v1/me/vouchers", headers=m.headers)
    assert r.status_code == 200 and r.json() == [] and r.headers["x-total-count"] == "0"


async def test_the_admin_lists_of_challenges_and_vouchers_say_how_many_there_are_when_cut_short(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any
) -> None:
    """Both lists are sliced by `limit` (default 50) but said nothing of the rest: an admin web app listing a
    program's challenges or vouchers showed the first 50 as if they were all."""
    for i in range(3):
        await make_challenge(f"c{i}", [step("Post", "post")], publish=i != 2)
        r = await client.post("/v1/admin/vouchers", json={"key": f"v{i}", "name": f"V{i}", "generated": True},
                              headers=admin_headers)
        assert r.status_code == 201, r.text
    r = await client.get("/v1/admin/challenges?limit=2", headers=admin_headers)
    assert r.status_code == 200 and len(r.json()) == 2 and r.headers["x-total-count"] == "3"
    r = await client.get("/v1/admin/challenges?status=published&limit=1&offset=1", headers=admin_headers)
    assert [c["key"] for c in r.json()] == ["c1"] and r.headers["x-total-count"] == "2"
    r = await client.get("/v1/admin/vouchers?limit=2", headers=admin_headers)
    assert r.status_code == 200 and len(r.json()) == 2 and r.headers["x-total-count"] == "3"


@pytest.mark.parametrize("field", ["title", "description", "steps", "eligibility", "schedule", "rewards"])
async def test_a_patch_setting_a_required_field_to_null_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], backend: str, field: str
) -> None:
    # `{"eligibility": null}` answered 200 and changed nothing: a premium-only challenge stayed premium-only while
    # the admin believed it open to everyone.
    body = {**ISSUE_EXAMPLE, "eligibility": {"tiers": ["premium"]}}
    assert (await client.post("/v1/admin/challenges", json=body, headers=admin_headers)).status_code == 201
    r = await client.patch("/v1/admin/challenges/complete-profile", json={field: None}, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["error"]["details"]] == [f"body.{field}"]
    r = await client.patch("/v1/admin/challenges/complete-profile", json={"icon": None}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["icon"] is None
    assert r.json()["eligibility"]["tiers"] == ["premium"]


async def test_eligibility_entries_are_bounded_like_member_profiles_and_a_blank_level_is_none(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any
) -> None:
    body = {"key": "elig", "title": "E", "description": "", "steps": [step("Post", "post")]}
    for eligibility, field in (({"tiers": ["x" * 65]}, "body.eligibility.tiers.0"),
                               ({"segments": [""]}, "body.eligibility.segments.0")):
        r = await client.post("/v1/admin/challenges", json={**body, "eligibility": eligibility}, headers=admin_headers)
        assert r.status_code == 422, r.text
        assert field in [d["field"] for d in r.json()["error"]["details"]]
    r = await client.post("/v1/admin/challenges", json={**body, "eligibility": {"min_level": " ", "tiers": ["gold"]}},
                          headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.json()["eligibility"]["min_level"] is None and r.json()["eligibility"]["tiers"] == ["gold"]
