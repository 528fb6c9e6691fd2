"""Notifications: a durable outbox written in the caller's transaction, delivered by a worker."""
