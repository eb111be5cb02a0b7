"""User accounts: login, logout, registration and API tokens."""
