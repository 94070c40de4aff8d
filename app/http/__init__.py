"""Plumbing every adapter shares: request bodies, JSON, query arguments, conditions, htmx."""
