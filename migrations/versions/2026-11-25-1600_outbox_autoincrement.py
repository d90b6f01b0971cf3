"""On SQLite, outbox becomes AUTOINCREMENT: outbox cleanup deletes processed rows, the newest included, and SQLite
then handed their ids out again; a new row's notification ("outbox:<id>") and webhook deliveries (endpoint,
outbox_id) collided with the first row's and were skipped as done, so the member heard nothing. The sequence
starts above every id anything still names. PostgreSQL's sequences never reuse an id: nothing to do there.

Revision ID: 0014_outbox_autoincrement
Revises: 0013_member_voucher_terms
Create Date: 2026-11-25 16:00:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0014_outbox_autoincrement'
down_revision: str | None = '0013_member_voucher_terms'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HIGHEST = """max(
  coalesce((SELECT max(id) FROM outbox), 0),
  coalesce((SELECT max(outbox_id) FROM webhook_deliveries), 0),
  coalesce((SELECT max(CAST(substr(source_key, 8) AS INTEGER)) FROM notifications
            WHERE source_key LIKE 'outbox:%'), 0))"""
SEED_SEQUENCE = [
    f"UPDATE sqlite_sequence SET seq = max(seq, {_HIGHEST}) WHERE name = 'outbox'",
    f"INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox', {_HIGHEST} "
    "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'outbox')",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    with op.batch_alter_table('outbox', recreate='always', table_kwargs={'sqlite_autoincrement': True}):
        pass
    for statement in SEED_SEQUENCE:
        op.execute(statement)


def downgrade() -> None:
    pass  # AUTOINCREMENT is kept: taking it away would let ids be reused again
