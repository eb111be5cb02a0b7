"""The create-experiment form: every appendix-A field, JSON mode, live grid preview."""
