"""Imports every module that registers scheduled jobs."""
