"""Pure rule engine: the criterion language and its incremental evaluator (no I/O)."""
