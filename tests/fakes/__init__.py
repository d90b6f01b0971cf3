"""Test doubles for external services."""
