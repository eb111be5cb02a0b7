"""`python -m trainer RUN_DIR` trains one run; `python -m trainer demo OUT_DIR` writes the demo."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# Before TensorFlow is imported anywhere: keep its C++ start-up chatter out of run logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    parser.add_argument("target", help="RUN_DIR holding run.json, or the word 'demo'")
    parser.add_argument("out_dir", nargs="?", help="with 'demo': where to write it")
    parser.add_argument("--epochs", type=int, default=30, help="with 'demo': total epochs")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, configure logging once, and run."""
    args = _parser().parse_args(argv)
    level = os.environ.get("NNT_TRAINER_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.target == "demo":
        if not args.out_dir:
            print("usage: python -m trainer demo OUT_DIR", file=sys.stderr)
            return 2
        from trainer.demo import demo_run_spec

        run_dir = demo_run_spec(args.out_dir, total_epochs=args.epochs)
        for path in sorted(run_dir.iterdir()):
            print(path.resolve())
        return 0
    from trainer.preflight import is_check
    from trainer.preflight import main as check

    if is_check(Path(args.target)):
        return check(Path(args.target))
    from trainer.runner import run

    return run(Path(args.target))


if __name__ == "__main__":
    sys.exit(main())
