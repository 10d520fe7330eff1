"""Alerts: the outbox the writer fills, published to SNS by the notifier, formatted per channel."""
