"""Stand-ins for the trainer's Python that hold a slot and cost no CPU."""

from __future__ import annotations

from pathlib import Path


def sleeping_python(directory: Path, ignore_term: bool = False) -> str:
    """A script that answers like Python to the orchestrator's start-up probe (`-c CODE`: exit
    0 at once, orchestrator/identity.py) and otherwise sleeps, whatever its arguments; with
    `ignore_term` it also ignores SIGTERM."""
    script = directory / ("stubborn-python" if ignore_term else "sleeper-python")
    trap = "trap '' TERM\n" if ignore_term else ""
    script.write_text(f'#!/bin/sh\n[ "$1" = "-c" ] && exit 0\n{trap}exec sleep 600\n')
    script.chmod(0o755)
    return str(script)
