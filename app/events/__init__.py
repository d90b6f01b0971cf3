"""Event ingestion and the engine run that turns events into badges, points and levels."""
