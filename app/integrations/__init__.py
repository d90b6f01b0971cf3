"""Adapters to external services; each keeps its vendor SDK behind a small typed facade."""
