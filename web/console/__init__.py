"""Admin console: users, their runs, resource use and quotas (staff only)."""
