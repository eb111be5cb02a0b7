"""`python -m stream_processors`: run the Faust worker (SIGTERM finishes the batch in hand)."""

from __future__ import annotations

import sys

from stream_processors.errors import ConfigError


def main() -> None:
    """Load settings, register the agents and run the worker until stopped."""
    try:
        from stream_processors import agents  # noqa: F401  (registers the agents on the app)
        from stream_processors.app import app
    except ConfigError as exc:
        sys.exit(f"stream_processors: {exc}")
    app.main()


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "info", "--without-web", *sys.argv[1:]]
    main()
