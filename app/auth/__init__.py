"""Callers: Mini Program members (WeChat login → JWT) and API keys with scopes."""
