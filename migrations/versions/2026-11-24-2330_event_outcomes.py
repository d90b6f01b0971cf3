"""event outcomes in a table of their own (written once, not as an update of the event row)

Revision ID: 0007_event_outcomes
Revises: 0006_rank_snapshots
Create Date: 2026-11-24 23:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0007_event_outcomes'
down_revision: str | None = '0006_rank_snapshots'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('event_outcomes',
    sa.Column('event_id', ID, nullable=False),
    sa.Column('outcome', JSON, nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_event_outcomes_event_id_events'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_event_outcomes'))
    )
    op.execute("INSERT INTO event_outcomes (event_id, outcome) SELECT id, outcome FROM events WHERE outcome IS NOT NULL")
    with op.batch_alter_table('events') as batch:
        batch.drop_column('outcome')


def downgrade() -> None:
    with op.batch_alter_table('events') as batch:
        batch.add_column(sa.Column('outcome', JSON, nullable=True))
    op.execute("UPDATE events SET outcome = (SELECT o.outcome FROM event_outcomes o WHERE o.event_id = events.id)")
    op.drop_table('event_outcomes')
