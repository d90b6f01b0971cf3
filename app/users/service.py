"""Member sync (integrators), WeChat identity linking, and the member's own profile."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.errors import Conflict, NotFound
from app.kit.dialect import lock_key
from app.leaderboards import service as lb_service
from app.models import User
from app.points import levels as levels_service
from app.users import repository as users_repo
from app.users.schemas import FriendsOut, LevelOut, MemberAdmin, MeOut, UserUpsert


async def upsert(session: AsyncSession, external_id: str, body: UserUpsert) -> tuple[User, bool]:
    """Create or update a member; a member who logged in through WeChat first is linked by openid. Whether the
    integrator's member was created: also when a login-only member takes an external id no one had (for the
    integrator that member did not exist before this call)."""
    user = await users_repo.by_external_id(session, external_id)
    created = linked_new = False
    fields = body.model_dump(exclude_unset=True)
    openid = fields.get("openid")
    if openid:
        holder = await users_repo.by_openid(session, openid)
        if holder is not None and (user is None or holder.id != user.id):
            if holder.external_id is None and user is None:
                user = holder  # the WeChat-first member becomes this integrator member
                user.external_id = external_id
                linked_new = True
            elif holder.external_id is None and user is not None and user.openid in (None, openid):
                # The member logged in before the integrator told us their openid, and events had already created
                # them under their integrator id: the login-only record is folded into that member.
                await _fold_login_into(session, holder, user)
            else:
                raise Conflict(
                    "openid already belongs to another member",
                    code="openid_conflict",
                    details={"external_id": holder.external_id},
                )
    unionid = fields.get("unionid")
    if unionid:
        holder = await users_repo.by_unionid(session, unionid)
        if holder is not None and (user is None or holder.id != user.id):
            raise Conflict(
                "unionid already belongs to another member",
                code="unionid_conflict",
                details={"external_id": holder.external_id},
            )
    if user is None:
        user, created = await users_repo.create_external(session, external_id)
    if "city" in fields and not created:
        # Compared with the city stored now, read under the lock an event's run takes (its scores move under it):
        # the member loaded above may be older (created meanwhile by their first event, or moved by another sync).
        stored = await users_repo.lock_city(session, user.id)
        set_committed_value(user, "city", stored)  # so that the assignment below writes any difference
        if fields["city"] != stored:
            await lb_service.member_city_changed(session, user.id, stored, fields["city"])
    for name, value in fields.items():
        setattr(user, name, [] if name == "segments" and value is None else value)
    await session.flush()
    return user, created or linked_new


async def _fold_login_into(session: AsyncSession, login: User, member: User) -> None:
    """The login-only member (no integrator id) becomes `member`: its openid and unionid, the profile fields the
    member lacks, its preferences, consent, inbox and challenges joined move over, and it is deleted. Its member
    token stops working; the Mini Program's next login lands on `member`. A login-only member cannot have engine
    history (no event or admin action can name it); should it have some, nothing is folded (409)."""
    openid = login.openid
    locked: dict[int, User | None] = {}
    for uid in sorted((login.id, member.id)):  # both locked, in one order
        # The login-only row FOR UPDATE: a consent report or an inbox row being written for it right now is
        # waited for (and then moved with the rest), and none can start until it is gone.
        locked[uid] = await users_repo.lock_row(session, uid, exclusive=uid == login.id)
    fresh_login, fresh_member = locked[login.id], locked[member.id]
    if (fresh_login is None or fresh_member is None or fresh_login.openid != openid
            or fresh_login.external_id is not None or fresh_member.openid not in (None, openid)):
        # Another sync folded it (or linked it) meanwhile: the openid now belongs to someone else.
        raise Conflict("openid already belongs to another member", code="openid_conflict",
                       details={"external_id": fresh_login.external_id if fresh_login else None})
    login, member = fresh_login, fresh_member
    if login.unionid and member.unionid not in (None, login.unionid):
        raise Conflict("The member who logged in has another unionid than this member", code="unionid_conflict",
                       details={"external_id": member.external_id})
    if await users_repo.has_engine_history(session, login.id):
        raise Conflict("openid already belongs to another member", code="openid_conflict",
                       details={"external_id": None})
    await users_repo.move_member_rows(session, login.id, member.id)
    unionid = login.unionid
    login.openid = login.unionid = None
    await session.flush()  # the unique ids leave the login-only row before the member takes them
    member.openid, member.unionid = openid, member.unionid or unionid
    for name in ("nickname", "avatar_url", "city", "tier"):
        if getattr(member, name) is None and getattr(login, name) is not None:
            setattr(member, name, getattr(login, name))
    member.preferences = {**(member.preferences or {}), **(login.preferences or {})}  # the member's own choices
    await session.delete(login)
    await session.flush()


async def set_friends(session: AsyncSession, external_id: str, friends: list[str]) -> FriendsOut:
    """Replace a member's friend list; unknown friends are created as bare members, like events do."""
    user = await users_repo.ensure_external(session, external_id)
    wanted = sorted({f for f in friends if f and f != external_id})
    ids = [(await users_repo.ensure_external(session, f)).id for f in wanted]
    await users_repo.replace_friends(session, user.id, ids)
    return FriendsOut(external_id=external_id, friends=wanted)


async def find_or_create_by_openid(session: AsyncSession, openid: str, unionid: str | None) -> User:
    """The member of a WeChat login: by openid, else by unionid (the same person in another app of the brand's
    open platform), else a new member. Logins of one unionid take turns, so a person logging in through two
    apps at the same moment becomes one member, not two."""
    if unionid:
        await lock_key(session, f"unionid:{unionid}")
    user = await users_repo.by_openid(session, openid)
    if user is None and unionid:
        user = await users_repo.by_unionid(session, unionid)
        if user is not None and user.openid is None:
            user.openid = openid  # an integrator knew this member by unionid only
    if user is None:
        user = await users_repo.ensure_openid(session, openid, unionid)
    if unionid and user.unionid is None and await users_repo.by_unionid(session, unionid) is None:
        try:
            async with session.begin_nested():
                user.unionid = unionid
                await session.flush()
        except IntegrityError:
            # Another member took this unionid meanwhile (an integrator's sync: logins take turns above); this
            # login goes on without it rather than fail, and re-running it could not help: the WeChat code it
            # carried is spent.
            await session.refresh(user)
    await session.flush()
    return user


async def me(session: AsyncSession, user: User) -> MeOut:
    status = await levels_service.status_for(session, user.points)
    return MeOut(
        id=user.id,
        external_id=user.external_id,
        nickname=user.nickname,
        avatar_url=user.avatar_url,
        city=user.city,
        tier=user.tier,
        segments=list(user.segments or []),
        points=user.points,
        level=LevelOut.model_validate(status.level) if status.level else None,
        next_level=LevelOut.model_validate(status.next_level) if status.next_level else None,
        points_to_next=status.points_to_next,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


async def admin_view(session: AsyncSession, external_id: str) -> MemberAdmin:
    user = await users_repo.by_external_id(session, external_id)
    if user is None:
        raise NotFound("Member not found", code="user_not_found")
    profile = await me(session, user)
    return MemberAdmin(
        **profile.model_dump(), openid=user.openid, unionid=user.unionid,
        awards_held=await users_repo.award_count(session, user.id),
    )
