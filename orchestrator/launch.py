"""`python -m orchestrator.launch RUN_DIR [--here]`: the trainer, and its exit code in RUN_DIR/exit.

The process runtime starts trainers through this so that an orchestrator that restarted
(and is no longer the trainer's parent) still learns how an adopted run ended. With `--here`
the trainer works in its current directory, which the orchestrator made RUN_DIR before it
switched to a user that cannot reach RUN_DIR by its path (orchestrator/identity.py); RUN_DIR
stays on the command line, where the orchestrator recognises its trainers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

EXIT_FILE = "exit"


def main(argv: list[str]) -> int:
    """Run the trainer on RUN_DIR and record its exit code atomically."""
    from trainer.__main__ import main as trainer_main

    run_dir = Path(".") if argv[1:] == ["--here"] else Path(argv[0])
    code = 1
    try:
        code = trainer_main([str(run_dir)])
    finally:
        tmp = run_dir / f".{EXIT_FILE}.tmp"
        tmp.write_text(str(code))
        os.replace(tmp, run_dir / EXIT_FILE)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
