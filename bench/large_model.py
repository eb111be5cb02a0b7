"""The training overhead on a ResNet50-size model (about 23.6M parameters), apart from
bench/overhead.py's small models so that each fits a short run: uninstrumented vs everything
collected every epoch vs the layers and internals a user chose, and where one epoch's
publishing goes. `python -m bench.large_model` prints JSON."""

from __future__ import annotations

import json
from typing import Any

from bench.overhead import measure_large


def run() -> dict[str, Any]:
    """Start (or reuse) Kafka and measure."""
    from bench.services import kafka

    with kafka() as bootstrap:
        return measure_large(bootstrap)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
