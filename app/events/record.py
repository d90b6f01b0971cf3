"""What the engine and its listeners see of an event: a plain record, not an ORM object.

Why: a batch builds thousands of these (posted events and the award events they cause); an ORM instance
costs several times more to construct and to read than a slotted dataclass, and the engine never needs one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class EventRecord:
    id: int
    idempotency_key: str
    user_id: int
    type: str
    source: str
    occurred_at: datetime
    received_at: datetime
    attributes: dict[str, Any]


@dataclass(slots=True)
class CreditRecord:
    """A points ledger entry as the engine wrote it (what points listeners and callers read)."""

    id: int
    user_id: int
    amount: int
    balance_after: int
    reason: str
    source_type: str
    source_id: str
    created_at: datetime
    # When what earned it happened (the event's occurred_at; now for an admin's adjustment): the period a points
    # leaderboard scores it in, so a late event's points land in their own period, as its spend or visits do.
    occurred_at: datetime | None = None


@dataclass(slots=True)
class MemberRecord:
    """What an engine run needs of the member it works for (the single-event path reads no ORM object)."""

    id: int
    external_id: str | None
    points: int
    city: str | None
