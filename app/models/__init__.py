"""All ORM models, imported here so Alembic and the drift test see the whole schema."""

from app.models.api_key import ApiKey
from app.models.base import Base
from app.models.challenge import Challenge, ChallengeParticipation
from app.models.engine import (
    AuditEntry,
    Badge,
    Event,
    EventOutcome,
    OutboxMessage,
    PointsEntry,
    RuleCounter,
    UserBadge,
    UserLevel,
)
from app.models.icon import Icon
from app.models.leaderboard import Leaderboard, LeaderboardRankSnapshot, LeaderboardScore, LeaderboardScoreCount
from app.models.level import BadgeLevel
from app.models.notification import (
    DispatchPause,
    Notification,
    NotificationMark,
    NotificationTemplate,
    SubscriptionCredit,
    SubscriptionReport,
    WeChatAttempt,
    WeChatDelivery,
)
from app.models.user import Friendship, User
from app.models.voucher import MemberVoucher, Voucher, VoucherCode
from app.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Badge",
    "BadgeLevel",
    "Base",
    "Challenge",
    "ChallengeParticipation",
    "DispatchPause",
    "Event",
    "EventOutcome",
    "Friendship",
    "Icon",
    "Leaderboard",
    "LeaderboardRankSnapshot",
    "LeaderboardScore",
    "LeaderboardScoreCount",
    "MemberVoucher",
    "Notification",
    "NotificationMark",
    "NotificationTemplate",
    "OutboxMessage",
    "PointsEntry",
    "RuleCounter",
    "SubscriptionCredit",
    "SubscriptionReport",
    "User",
    "UserBadge",
    "UserLevel",
    "Voucher",
    "VoucherCode",
    "WeChatAttempt",
    "WeChatDelivery",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
