"""The tracker callback for users' own Keras scripts, and the call that gives a script its run.

from trainer.sdk import TrackerCallback, CollectSpec, register_run
run = register_run("http://127.0.0.1:8000", token, name="my run", total_epochs=20)
model.fit(x, y, epochs=20, callbacks=[run.tracker()])
"""

from __future__ import annotations

try:
    import keras  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the user's environment
    raise ImportError(
        "TrackerCallback needs Keras 3 and TensorFlow: pip install 'nntracker[trainer]'"
    ) from exc

import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

from schemas.experiment import CollectSpec
from trainer.callback import TrackerCallback
from trainer.errors import ConfigError

__all__ = ["CollectSpec", "SdkRun", "TrackerCallback", "register_run"]


@dataclass(frozen=True)
class SdkRun:
    """A run the web created for a script: its id, the key its events are signed with."""

    simulation_id: uuid.UUID
    run_key: str
    name: str
    owner: str = ""
    tags: list[str] = field(default_factory=list)
    total_epochs: int = 0

    def tracker(self, bootstrap: str = "127.0.0.1:9092", **options: Any) -> TrackerCallback:
        """A TrackerCallback publishing for this run (options: TrackerCallback's)."""
        return TrackerCallback(
            bootstrap,
            self.name,
            simulation_id=self.simulation_id,
            run_key=self.run_key,
            owner=self.owner,
            tags=self.tags,
            total_epochs=self.total_epochs or None,
            **options,
        )


def register_run(
    url: str,
    token: str,
    name: str,
    tags: list[str] | None = None,
    total_epochs: int = 0,
    timeout: float = 30.0,
) -> SdkRun:
    """`POST {url}/api/sdk-runs` as the token's user: the new run, owned by that user."""
    body = json.dumps({"name": name, "tags": tags or [], "total_epochs": total_epochs}).encode()
    request = urllib.request.Request(  # noqa: S310 - the user's own NN Tracker URL
        url.rstrip("/") + "/api/sdk-runs",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            doc = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise ConfigError(f"POST /api/sdk-runs: {exc.code} {exc.read()[:500]!r}") from exc
    return SdkRun(
        simulation_id=uuid.UUID(doc["simulation_id"]),
        run_key=doc["run_key"],
        name=doc.get("name", name),
        owner=doc.get("owner", ""),
        tags=list(doc.get("tags", tags or [])),
        total_epochs=int(doc.get("total_epochs", total_epochs) or 0),
    )
