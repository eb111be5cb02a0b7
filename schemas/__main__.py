"""`python -m schemas export`: write JSON Schemas of the plain-JSON topics to schemas/json/."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schemas.commands import COMMAND_ADAPTER
from schemas.experiment import ExperimentConfig
from schemas.live import LiveUpdate
from schemas.status import StatusEvent

OUT = Path(__file__).parent / "json"


def documents() -> dict[str, dict]:
    """Every exported schema by file name."""
    return {
        "nnt.commands.schema.json": COMMAND_ADAPTER.json_schema(),
        "nnt.status.schema.json": StatusEvent.model_json_schema(),
        "nnt.live.schema.json": LiveUpdate.model_json_schema(),
        "experiment.schema.json": ExperimentConfig.model_json_schema(),
    }


def export(out: Path = OUT) -> list[Path]:
    """Write the schemas; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in documents().items():
        path = out / name
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    if sys.argv[1:] != ["export"]:
        sys.exit("usage: python -m schemas export")
    for p in export():
        print(p)
