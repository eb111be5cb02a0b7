"""Experiments and simulations: models, REST API, pages and lifecycle commands."""
