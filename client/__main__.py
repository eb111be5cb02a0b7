"""`python -m client` = the `nntracker` command."""

from __future__ import annotations

from client.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
