"""Indexes on the columns that reference a member without one: deleting a member (a login-only record folded
into the member it turns out to be, or one a batch created only for refused items) made PostgreSQL scan outbox,
audit_log, webhook_deliveries and user_friends whole, once per member, for their ON DELETE actions.

Revision ID: 0012_member_fk_indexes
Revises: 0011_audit_actor_key
Create Date: 2026-11-25 14:00:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0012_member_fk_indexes'
down_revision: str | None = '0011_audit_actor_key'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ('ix_outbox_user_id', 'outbox', ['user_id']),
    ('ix_audit_log_user_id', 'audit_log', ['user_id']),
    ('ix_webhook_deliveries_user_id', 'webhook_deliveries', ['user_id']),
    ('ix_user_friends_friend_id', 'user_friends', ['friend_id']),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
