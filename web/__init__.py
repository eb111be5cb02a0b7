"""NN Tracker web: Django project (accounts, simulations, live charts, REST API)."""
