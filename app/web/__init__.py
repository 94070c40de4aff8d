"""Server-rendered pages: settings, dashboard and health."""
