"""foundation: users, friends, api keys, the level ladder (with the default 9 levels)

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-24 20:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.base

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = app.models.base.UTCDateTime

DEFAULT_LADDER = [
    ("Community Starter", 5),
    ("Community Contributor", 15),
    ("Active Member", 25),
    ("Engaged Member", 50),
    ("Community Champion", 100),
    ("Community Leader", 250),
    ("Community Hero", 500),
    ("Community Legend", 1000),
    ("Community Icon", 2500),
]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("external_id", sa.String(128), nullable=True),
        sa.Column("openid", sa.String(128), nullable=True),
        sa.Column("unionid", sa.String(128), nullable=True),
        sa.Column("nickname", sa.String(64), nullable=True),
        sa.Column("avatar_url", sa.String(1024), nullable=True),
        sa.Column("city", sa.String(64), nullable=True),
        sa.Column("tier", sa.String(64), nullable=True),
        sa.Column("segments", JSONType, nullable=False),
        sa.Column("preferences", JSONType, nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("external_id", name=op.f("uq_users_external_id")),
        sa.UniqueConstraint("openid", name=op.f("uq_users_openid")),
        sa.UniqueConstraint("unionid", name=op.f("uq_users_unionid")),
    )
    op.create_index("ix_users_city", "users", ["city"])
    op.create_table(
        "user_friends",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("friend_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_friends_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["friend_id"], ["users.id"], name=op.f("fk_user_friends_friend_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "friend_id", name=op.f("pk_user_friends")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scopes", JSONType, nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=True),
        sa.Column("last_used_at", UTC(), nullable=True),
        sa.Column("revoked_at", UTC(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    levels = op.create_table(
        "badge_levels",
        sa.Column("rank", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("icon", sa.String(256), nullable=True),
        sa.Column("points_required", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("rank", name=op.f("pk_badge_levels")),
        sa.UniqueConstraint("name", name=op.f("uq_badge_levels_name")),
        sa.UniqueConstraint("points_required", name=op.f("uq_badge_levels_points_required")),
    )
    op.bulk_insert(
        levels,
        [
            {"rank": i + 1, "name": name, "icon": f"level-{i + 1}", "points_required": pts}
            for i, (name, pts) in enumerate(DEFAULT_LADDER)
        ],
    )


def downgrade() -> None:
    op.drop_table("badge_levels")
    op.drop_table("api_keys")
    op.drop_table("user_friends")
    op.drop_index("ix_users_city", table_name="users")
    op.drop_table("users")
