"""`python -m bench`: run every benchmark (added by the benchmarks issue)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    print("no benchmarks yet: see bench/README.md")
    sys.exit(0)
