"""Signed webhooks for integrators: endpoints, deliveries with retries, dead letters and redelivery."""
