"""Leaderboards: periodic rankings by spend, visits, badges or points, filtered and private where asked."""
