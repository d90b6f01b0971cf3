"""Domain-agnostic infrastructure: database, dialect helpers, pagination, time."""
