"""Member profiles, friends, and sync from integrators."""
