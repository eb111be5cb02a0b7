"""Generate docs/configuration.md from every component's settings class (one source of truth).

`python -m infra.configdoc` rewrites the page; a unit test fails when it is stale.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from schemas.kafkaauth import KafkaSecurity

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
KAFKA_SECURITY = "Kafka security (every component, trainers included)"
COMPONENTS = (
    (KAFKA_SECURITY, "schemas.kafkaauth", "KafkaSecurity"),
    ("Local stack and CLI (`nntracker`)", "infra.settings", "StackSettings"),
    ("Web (`python -m web serve`)", "web.config", "WebSettings"),
    (
        "Stream processors (`python -m stream_processors`)",
        "stream_processors.settings",
        "StreamSettings",
    ),
    ("Orchestrator (`python -m orchestrator`)", "orchestrator.settings", "OrchestratorSettings"),
    ("Trainer (`python -m trainer`)", "trainer.settings", "TrainerSettings"),
)


def _default(field: Any) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
    else:
        return "**required**"
    if value is None:
        return "unset"
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    text = str(value)
    if text.startswith(sys.prefix) or text.startswith(sys.base_prefix):
        return "(this Python)"
    return f"`{text}`" if text else '`""`'


def section(title: str, module: str, cls: str) -> list[str]:
    """One table: variable, default, meaning (the Kafka security ones only in their own)."""
    settings = getattr(importlib.import_module(module), cls)
    prefix = settings.model_config.get("env_prefix", "") or ""
    rows = [f"## {title}", ""]
    inherits = issubclass(settings, KafkaSecurity) and settings is not KafkaSecurity
    shared = set(KafkaSecurity.model_fields) if inherits else set()
    if shared:
        rows += [f"Also the variables of *{KAFKA_SECURITY}*.", ""]
    rows += ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in settings.model_fields.items():
        if name in shared:
            continue
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        var = (alias or f"{prefix}{name}").upper()
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{var}` | {_default(field)} | {meaning} |")
    return [*rows, ""]


def render() -> str:
    """The whole page."""
    lines = [
        "# Configuration",
        "",
        "Every component reads its environment once at start and fails fast "
        "with a message naming the bad variable. This page is generated from the settings classes "
        "by `python -m infra.configdoc`; a test keeps it current.",
        "",
    ]
    for title, module, cls in COMPONENTS:
        lines += section(title, module, cls)
    return "\n".join(lines)


if __name__ == "__main__":
    DOC.write_text(render())
    print(DOC)
