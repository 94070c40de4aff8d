"""Preferences: the registry of keys, the service that reads and writes them, and their cache."""
