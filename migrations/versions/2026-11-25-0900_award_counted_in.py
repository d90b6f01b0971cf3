"""user_badges.counted_in: the counters an award's badge.awarded event moved, so a revoke can take it back out;
on SQLite, user_badges becomes AUTOINCREMENT, so the id of a revoked award is never handed out again

Revision ID: 0008_award_counted_in
Revises: 0007_event_outcomes
Create Date: 2026-11-25 09:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0008_award_counted_in'
down_revision: str | None = '0007_event_outcomes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('user_badges') as batch:
        batch.add_column(sa.Column('counted_in', JSON, nullable=True))
    if op.get_bind().dialect.name == 'sqlite':
        # The table is rebuilt with AUTOINCREMENT; sqlite_sequence starts from the highest id it holds. A revoked
        # award whose id was the highest left its id behind in its badge.awarded event key and ledger sources:
        # the sequence starts above those too, or the next award would collide with them.
        with op.batch_alter_table('user_badges', recreate='always',
                                  table_kwargs={'sqlite_autoincrement': True}):
            pass
        for statement in SEED_SEQUENCE:
            op.execute(statement)


# The highest award id anything names; sqlite_sequence has no unique name, hence an update or an insert.
_HIGHEST = """max(
  coalesce((SELECT max(id) FROM user_badges), 0),
  coalesce((SELECT max(CAST(substr(idempotency_key, 22) AS INTEGER)) FROM events
            WHERE idempotency_key LIKE 'laurel:badge.awarded:%'), 0),
  coalesce((SELECT max(CAST(source_id AS INTEGER)) FROM points_ledger
            WHERE source_type IN ('badge', 'badge_revoke')), 0))"""
SEED_SEQUENCE = [
    f"UPDATE sqlite_sequence SET seq = max(seq, {_HIGHEST}) WHERE name = 'user_badges'",
    f"INSERT INTO sqlite_sequence (name, seq) SELECT 'user_badges', {_HIGHEST} "
    "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'user_badges')",
]


def downgrade() -> None:
    with op.batch_alter_table('user_badges') as batch:
        batch.drop_column('counted_in')
