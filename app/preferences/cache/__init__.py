"""The settings cache: entries per user, a breaker, Redis or local backends, an outbox."""
