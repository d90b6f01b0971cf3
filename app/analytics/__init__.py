"""Program analytics for the admin web app: an overview, retention of badge earners against other members, and
per-badge and per-challenge reports (JSON and CSV)."""
