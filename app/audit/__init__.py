"""Audit log of manual operator actions."""
