"""Live latency: trainer epoch end → headless Chromium receiving the WebSocket message.

The whole stack runs from `nntracker up`; a tiny model trains for EPOCHS epochs with the
tracker; the page records Date.now() on every WebSocket message and each point carries the
trainer's `at`. Same machine, same clock. Peers: TensorBoard reloads every 5 s, MLflow's UI
every 30 s (their refresh periods, not measured here).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.e2e.stack import ROOT, UP_LINE, launch_chromium, start_up, token_session

EPOCHS = 250
RECORDER = """
(() => {
  const Native = window.WebSocket;
  window.__nntRecv = [];
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    ws.addEventListener("message", (ev) => window.__nntRecv.push([Date.now(), ev.data]));
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
})();
"""


def latencies(records: list[list[Any]]) -> list[float]:
    """Seconds from each point's trainer timestamp to the page receiving it."""
    out = []
    for received_ms, data in records:
        message = json.loads(data)
        for point in message.get("points", []):
            if point.get("at"):
                sent = datetime.fromisoformat(point["at"].replace("Z", "+00:00")).timestamp()
                out.append(received_ms / 1000 - sent)
    return out


def measure(up_home: Path) -> dict[str, Any]:
    """Start the stack, log in a user, train while the page listens; return the percentiles."""
    from playwright.sync_api import sync_playwright

    up = start_up(up_home, demo=False)
    try:
        base = up.wait_for(UP_LINE, 300).group(1).rstrip("/")
        up.ensure_user("bench", "bench-password")
        # The run and the key that signs its events, as a user's own script gets them.
        api = token_session(base, "bench", "bench-password")
        run = api.post(
            f"{base}/api/sdk-runs",
            json={"name": "latency benchmark", "tags": ["bench"], "total_epochs": EPOCHS},
        )
        assert run.status_code == 201, run.text
        sid = run.json()["simulation_id"]
        bootstrap = f"127.0.0.1:{up.ports['kafka']}"
        trainer = subprocess.Popen(
            [sys.executable, "-m", "bench.latency_trainer", bootstrap, sid, "bench", str(EPOCHS)],
            cwd=ROOT,
            env={**os.environ, "NNT_RUN_KEY": run.json()["run_key"]},
        )  # fmt: skip
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page()
            page.add_init_script(RECORDER)
            page.goto(f"{base}/accounts/login/?next=/simulations/")
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", "bench-password")
            page.click("button[type=submit]")
            page.wait_for_url("**/simulations/**")
            deadline = time.monotonic() + 120
            while page.goto(f"{base}/simulations/{sid}/").status == 404:
                assert time.monotonic() < deadline, "the simulation never appeared"
                time.sleep(0.5)
            page.wait_for_function("window.__nntRecv !== undefined && window.nntLive !== undefined")
            page.wait_for_timeout(1500)  # the WebSocket joins its group
            Path(f"/tmp/nnt-latency-{sid}.go").touch()
            trainer.wait(600)
            page.wait_for_timeout(2000)
            records = page.evaluate("window.__nntRecv")
            browser.close()
        values = sorted(latencies(records))
    finally:
        up.interrupt()
    assert len(values) >= EPOCHS, f"only {len(values)} points reached the page"
    q = statistics.quantiles(values, n=100)
    return {
        "epochs": EPOCHS,
        "points": len(values),
        "live_latency_p50_s": q[49],
        "live_latency_p95_s": q[94],
        "live_latency_max_s": values[-1],
        "peers_refresh_s": {"tensorboard": 5, "mlflow": 30},
    }


def run() -> dict[str, Any]:
    """Measure in a temporary NNT_HOME."""
    with tempfile.TemporaryDirectory(prefix="nnt-latency-") as tmp:
        home = Path(tmp)
        home.chmod(0o755)
        return measure(home)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
