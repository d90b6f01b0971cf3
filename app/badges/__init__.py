"""Badges: definitions, awards, the member's collection, statistics."""
