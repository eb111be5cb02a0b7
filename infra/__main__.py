"""`python -m infra` is the `nntracker` command."""

from __future__ import annotations

import sys

from infra.cli import main

sys.exit(main())
