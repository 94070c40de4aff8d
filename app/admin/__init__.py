"""The read-only admin pages: users, their settings and history, and who looked."""
