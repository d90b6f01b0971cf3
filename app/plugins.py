"""Imports the packages that register engine listeners (challenges, leaderboards)."""
