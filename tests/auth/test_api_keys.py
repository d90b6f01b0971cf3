"""API keys: scopes, revocation, the CLI, and the wall between member tokens and keys."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api import ADMIN


async def test_missing_and_bad_credentials_are_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/admin/api-keys")).status_code == 401
    r = await client.get("/v1/admin/api-keys", headers={"Authorization": "Bearer lk_deadbeef_nope"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert (await client.get("/v1/me", headers={"Authorization": "Bearer garbage"})).status_code == 401


async def test_key_without_scope_is_403(client: httpx.AsyncClient, make_key: Any) -> None:
    headers = await make_key("events:write")
    r = await client.get("/v1/admin/api-keys", headers=headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "insufficient_scope"
    r = await client.put("/v1/users/u1", json={}, headers=headers)
    assert r.status_code == 403


async def test_member_token_never_opens_admin_and_key_never_acts_as_member(
    client: httpx.AsyncClient, login: Any, make_key: Any
) -> None:
    member = await login()
    r = await client.get("/v1/admin/api-keys", headers=member)
    assert r.status_code in (401, 403)
    assert (await client.put("/v1/users/x", json={}, headers=member)).status_code in (401, 403)
    key = await make_key("admin")
    r = await client.get("/v1/me", headers=key)
    assert r.status_code in (401, 403)


async def test_created_key_is_shown_once_stored_hashed_and_revocable(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    r = await client.post("/v1/admin/api-keys", json={"name": "crm", "scopes": ["admin"]}, headers=admin_headers)
    assert r.status_code == 201
    created = r.json()
    key = created["key"]
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/v1/admin/api-keys", headers=headers)).status_code == 200
    listing = (await client.get("/v1/admin/api-keys", headers=admin_headers)).json()
    assert all("key" not in item for item in listing)
    assert key not in str(listing)
    assert (await client.delete(f"/v1/admin/api-keys/{created['id']}", headers=admin_headers)).status_code == 200
    r = await client.get("/v1/admin/api-keys", headers=headers)
    assert r.status_code == 401


async def test_unknown_scope_is_422(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    r = await client.post("/v1/admin/api-keys", json={"name": "x", "scopes": ["root"]}, headers=admin_headers)
    assert r.status_code == 422


async def test_cli_key_calls_admin_endpoint(client: httpx.AsyncClient, app: FastAPI) -> None:
    env = {**os.environ, "LAUREL_DATABASE_URL": app.state.settings.database_url}
    cmd = [sys.executable, "-m", "app.cli", "api-keys", "create", "--name", "ops", "--scopes", "admin,events:write"]
    out = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env, check=True, timeout=60)
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("lk_")
    r = await client.get("/v1/admin/api-keys", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    assert [k["name"] for k in r.json()] == ["ops"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["create", "--name", "", "--scopes", "admin"], 2, "name"),
        (["create", "--name", "x" * 300, "--scopes", "admin"], 2, "name"),
        (["revoke", "424242"], 1, "not found"),
        # Beyond a 64-bit id: the API answers 422, the CLI printed an OverflowError traceback.
        (["revoke", "99999999999999999999999"], 1, "not found"),
    ],
)
async def test_the_cli_refuses_what_the_api_refuses_with_a_message_not_a_traceback(
    client: httpx.AsyncClient, app: FastAPI, args: list[str], code: int, says: str
) -> None:
    env = {**os.environ, "LAUREL_DATABASE_URL": app.state.settings.database_url}
    cmd = [sys.executable, "-m", "app.cli", "api-keys", *args]
    out = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == code, out.stderr
    assert says in out.stderr.lower() and "Traceback" not in out.stderr
    assert (await client.get("/v1/admin/api-keys", headers=ADMIN)).json() == []


@pytest.mark.sqlite_too
async def test_a_stored_keys_last_use_is_recorded(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    made = (await client.post("/v1/admin/api-keys", json={"name": "ops", "scopes": ["admin"]},
                              headers=admin_headers)).json()
    assert made["last_used_at"] is None
    listed = await client.get("/v1/admin/api-keys", headers={"Authorization": f"Bearer {made['key']}"})
    assert listed.status_code == 200
    mine = next(k for k in (await client.get("/v1/admin/api-keys", headers=admin_headers)).json()
                if k["id"] == made["id"])
    assert mine["last_used_at"] is not None


async def test_the_cli_prints_a_members_token_and_audits_it(client: httpx.AsyncClient, app: FastAPI) -> None:
    # WeChat cannot be reached from a developer's machine: this is how to call the Mini Program API as a member.
    assert (await client.put("/v1/users/M-cli", json={"nickname": "Li"}, headers=ADMIN)).status_code == 201
    settings = app.state.settings
    env = {**os.environ, "LAUREL_DATABASE_URL": settings.database_url, "LAUREL_JWT_SECRET": settings.jwt_secret}
    cmd = [sys.executable, "-m", "app.cli", "members", "token", "M-cli", "--reason", "trying the stub"]
    out = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["external_id"] == "M-cli", me.text
    audit = (await client.get("/v1/admin/audit", params={"action": "member.token"}, headers=ADMIN)).json()["items"]
    assert [(a["actor"], a["user_id"], a["reason"]) for a in audit] == [("cli", "M-cli", "trying the stub")]
    assert audit[0]["details"] == {"ttl_seconds": 3600} and "valid for 3600 s" in out.stderr  # short-lived
    cmd[5] = "nobody"
    out = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 1 and "no member" in out.stderr and "Traceback" not in out.stderr
    # The audit log says why: a blank reason is refused, and nothing is issued or recorded.
    blank = [*cmd[:5], "M-cli", "--reason", " "]
    out = await asyncio.to_thread(subprocess.run, blank, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and "--reason" in out.stderr and out.stdout == ""
    audit = (await client.get("/v1/admin/audit", params={"action": "member.token"}, headers=ADMIN)).json()["items"]
    assert len(audit) == 1



@pytest.mark.sqlite_too
async def test_the_audit_log_names_the_key_an_operator_acted_with(client: httpx.AsyncClient) -> None:
    """Key names are not unique: each entry carries the id of the key used (null for the bootstrap key)."""
    keys = []
    for _ in range(2):
        r = await client.post("/v1/admin/api-keys", json={"name": "ops-web", "scopes": ["admin"]}, headers=ADMIN)
        assert r.status_code == 201, r.text
        keys.append(r.json())
    await client.put("/v1/users/AK-1", json={"nickname": "A"}, headers=ADMIN)
    for headers in [{"Authorization": f"Bearer {key['key']}"} for key in keys] + [ADMIN]:
        r = await client.post("/v1/admin/users/AK-1/points", json={"amount": 1, "reason": "thanks"}, headers=headers)
        assert r.status_code == 200, r.text
    items = (await client.get("/v1/admin/audit", headers=ADMIN)).json()["items"]
    assert [(e["actor"], e["actor_key_id"]) for e in reversed(items)] == [
        ("ops-web", keys[0]["id"]), ("ops-web", keys[1]["id"]), ("bootstrap", None)]
