"""Challenges: opt-in journeys of steps, with eligibility, schedules and completion rewards."""
