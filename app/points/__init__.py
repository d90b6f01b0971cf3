"""Points ledger and the level ladder."""
