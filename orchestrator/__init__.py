"""Orchestrator: consumes `nnt.commands`, expands experiments, runs trainers, reports on `nnt.status`."""
