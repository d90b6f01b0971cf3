"""`laurel` command line: API keys, member tokens, migrations, serving, the worker, OpenAPI export."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from app.config import get_settings

cli = typer.Typer(no_args_is_help=True, help="Laurel gamification service")
keys_cli = typer.Typer(no_args_is_help=True, help="Manage API keys")
db_cli = typer.Typer(no_args_is_help=True, help="Database migrations")
members_cli = typer.Typer(no_args_is_help=True, help="Members")
cli.add_typer(keys_cli, name="api-keys")
cli.add_typer(db_cli, name="db")
cli.add_typer(members_cli, name="members")


async def _with_session(fn):  # type: ignore[no-untyped-def]
    from app.kit.db import Database

    db = Database(get_settings())
    try:
        async with db.sessionmaker() as session, session.begin():
            return await fn(session)
    finally:
        await db.dispose()


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: admin,events:write,users:write,analytics:read")],
) -> None:
    """Create a key and print it (shown once)."""
    from pydantic import ValidationError

    from app.auth import service as auth_service
    from app.auth.schemas import ApiKeyCreate
    from app.errors import LaurelError

    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    try:  # the API's own rules for a key's name and scopes
        body = ApiKeyCreate.model_validate({"name": name, "scopes": wanted})
    except ValidationError as exc:
        first = exc.errors()[0]
        typer.echo(f"error: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}", err=True)
        raise typer.Exit(2) from exc
    try:
        key, full = asyncio.run(
            _with_session(lambda s: auth_service.create_api_key(s, body.name, list(body.scopes), created_by="cli"))
        )
    except LaurelError as exc:
        typer.echo(f"error: {exc.message} {exc.details or ''}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(full)
    typer.echo(f"id={key.id} prefix={key.prefix} scopes={','.join(key.scopes)}", err=True)


@keys_cli.command("list")
def keys_list() -> None:
    """List keys (never secrets)."""
    from app.auth import service as auth_service

    for k in asyncio.run(_with_session(auth_service.list_api_keys)):
        state = "revoked" if k.revoked_at else "active"
        typer.echo(f"{k.id}\t{k.prefix}\t{k.name}\t{','.join(k.scopes)}\t{state}")


@keys_cli.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke a key by id."""
    from app.auth import service as auth_service
    from app.errors import LaurelError

    try:
        asyncio.run(_with_session(lambda s: auth_service.revoke_api_key(s, key_id)))
    except LaurelError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"revoked {key_id}")


@members_cli.command("token")
def members_token(
    external_id: str,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log)")] = "support: act as this member",
    ttl_seconds: Annotated[
        int, typer.Option(min=60, help="How long it is valid (at most LAUREL_JWT_TTL_SECONDS)")
    ] = 3600,
) -> None:
    """Print a member's bearer token, as a WeChat login would give them, valid for an hour by default (audited).
    For trying the Mini Program API without WeChat, and for support; the member must exist (PUT
    /v1/users/{external_id} or a first event). The server must share this environment's LAUREL_JWT_SECRET."""
    from app.audit import service as audit
    from app.auth.tokens import issue_user_token
    from app.users import repository as users_repo

    if not reason.strip():
        typer.echo("error: --reason must say why (it is kept in the audit log)", err=True)
        raise typer.Exit(2)
    settings = get_settings()

    async def issue(session):  # type: ignore[no-untyped-def]
        user = await users_repo.by_external_id(session, external_id)
        if user is None:
            return None
        token, ttl = issue_user_token(settings, user.id, ttl_seconds, created_at=user.created_at)
        await audit.record(session, actor="cli", action="member.token", reason=reason, user_id=user.id,
                           target=external_id, details={"ttl_seconds": ttl})
        return token, ttl

    issued = asyncio.run(_with_session(issue))
    if issued is None:
        typer.echo(f"error: no member with external_id {external_id!r}", err=True)
        raise typer.Exit(1)
    token, ttl = issued
    typer.echo(token)
    typer.echo(f"valid for {ttl} s", err=True)


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (the only way the schema is created)."""
    from app.kit import migrate

    migrate.upgrade(get_settings().database_url, revision)


@db_cli.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (use 'base' for an empty database)."""
    from app.kit import migrate

    migrate.downgrade(get_settings().database_url, revision)


@cli.command()
def serve(host: str = "127.0.0.1", port: int = 8000, migrate_first: bool = True, workers: int = 1) -> None:
    """Apply migrations, then serve the API with uvicorn."""
    import uvicorn

    from app.kit import migrate

    if migrate_first:
        migrate.upgrade(get_settings().database_url)
    uvicorn.run("app.main:app", host=host, port=port, workers=workers, log_config=None, proxy_headers=True)


@cli.command()
def worker() -> None:
    """Run the outbox dispatcher and scheduler without serving HTTP."""
    from app.worker import standalone

    asyncio.run(standalone.run_forever())


@cli.command()
def openapi(out: Path = Path("openapi/openapi.json")) -> None:
    """Write the OpenAPI document generated from the app."""
    from app.openapi_export import render

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render())
    typer.echo(f"wrote {out}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
