"""Notifications: in-app inbox, WeChat subscription messages with a consent ledger, the outbox fan-out."""
