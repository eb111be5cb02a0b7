"""Live latency: trainer epoch end → headless Chromium receiving the WebSocket message.

The whole stack runs from `nntracker up`; a tiny model trains for EPOCHS epochs with the
tracker; the page records Date.now() on every WebSocket message and each point carries the
trainer's `at`. Same machine, same clock. Then under load: RUNS trainers (as in
bench/concurrent.py) stream LOADED_EPOCHS epochs at once, released together once each has
imported TensorFlow, while one page holds a socket on each run. Peers: TensorBoard reloads
every 5 s, MLflow's UI every 30 s (their refresh periods, not measured here).
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

from bench.latency_trainer import clean, release, stop, wait_ready
from tests.e2e.stack import ROOT, UP_LINE, launch_chromium, start_up, token_session

EPOCHS = 250
RUNS = 20  # under load: this many runs streaming at once, each watched by a socket
LOADED_EPOCHS = 100
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

# The page opens one socket per run, as twenty open run pages would (the recorder sees them).
OPEN_SOCKETS = """
(sims) => {
  window.__nntOpen = 0;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  for (const sid of sims) {
    const ws = new WebSocket(`${scheme}://${location.host}/ws/simulations/${sid}/`);
    ws.addEventListener("open", () => { window.__nntOpen += 1; });
  }
}
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


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 and max of the latencies."""
    q = statistics.quantiles(values, n=100)
    return {"p50_s": q[49], "p95_s": q[94], "max_s": max(values)}


def new_runs(api: Any, base: str, count: int, epochs: int) -> list[dict[str, Any]]:
    """`count` runs made through the API as a user's script makes them (id and signing key)."""
    made = []
    for i in range(count):
        run = api.post(
            f"{base}/api/sdk-runs",
            json={"name": f"latency benchmark {i}", "tags": ["bench"], "total_epochs": epochs},
        )
        assert run.status_code == 201, run.text
        made.append(run.json())
    return made


def trainers(bootstrap: str, runs: list[dict[str, Any]], epochs: int) -> list[Any]:
    """One bench.latency_trainer process per run, each waiting for its GO file."""
    return [
        subprocess.Popen(
            [sys.executable, "-m", "bench.latency_trainer", bootstrap, run["simulation_id"],
             "bench", str(epochs)],
            cwd=ROOT, env={**os.environ, "NNT_RUN_KEY": run["run_key"]},
            stdout=subprocess.DEVNULL if len(runs) > 1 else None,
        )
        for run in runs
    ]  # fmt: skip


def logged_in(browser: Any, base: str) -> Any:
    """A page of `bench`, logged in, that records every WebSocket message it receives."""
    page = browser.new_page()
    page.add_init_script(RECORDER)
    page.goto(f"{base}/accounts/login/?next=/simulations/")
    page.fill("input[name=username]", "bench")
    page.fill("input[name=password]", "bench-password")
    page.click("button[type=submit]")
    page.wait_for_url("**/simulations/**")
    return page


def one_run(api: Any, base: str, bootstrap: str, browser: Any) -> dict[str, Any]:
    """One run of EPOCHS epochs watched on its own page."""
    (run,) = new_runs(api, base, 1, EPOCHS)
    sid = run["simulation_id"]
    procs = trainers(bootstrap, [run], EPOCHS)
    try:
        page = logged_in(browser, base)
        deadline = time.monotonic() + 120
        while page.goto(f"{base}/simulations/{sid}/").status == 404:
            assert time.monotonic() < deadline, "the simulation never appeared"
            time.sleep(0.5)
        page.wait_for_function("window.__nntRecv !== undefined && window.nntLive !== undefined")
        page.wait_for_timeout(1500)  # the WebSocket joins its group
        wait_ready([sid], procs, 300)
        release([sid])
        procs[0].wait(600)
        page.wait_for_timeout(2000)
        values = sorted(latencies(page.evaluate("window.__nntRecv")))
        page.close()
    finally:
        stop(procs)
        clean([sid])
    assert len(values) >= EPOCHS, f"only {len(values)} points reached the page"
    q = percentiles(values)
    return {
        "epochs": EPOCHS,
        "points": len(values),
        "live_latency_p50_s": q["p50_s"],
        "live_latency_p95_s": q["p95_s"],
        "live_latency_max_s": q["max_s"],
    }


def many_runs(api: Any, base: str, bootstrap: str, browser: Any) -> dict[str, Any]:
    """RUNS runs of LOADED_EPOCHS epochs released together, one socket on each in one page."""
    runs = new_runs(api, base, RUNS, LOADED_EPOCHS)
    sims = [run["simulation_id"] for run in runs]
    procs = trainers(bootstrap, runs, LOADED_EPOCHS)
    try:
        page = logged_in(browser, base)
        page.evaluate(OPEN_SOCKETS, sims)
        page.wait_for_function(f"window.__nntOpen === {len(sims)}", timeout=60_000)
        waited = wait_ready(sims, procs, 600)  # twenty TensorFlow imports on two cores
        t0 = time.monotonic()
        release(sims)
        for proc in procs:
            proc.wait(900)
        train_s = time.monotonic() - t0
        page.wait_for_timeout(2000)
        records = page.evaluate("window.__nntRecv")
        page.close()
    finally:
        stop(procs)
        clean(sims)
    failed = [p.returncode for p in procs if p.returncode != 0]
    assert not failed, f"{len(failed)} trainers failed: {failed}"
    values = sorted(latencies(records))
    assert len(values) >= RUNS * LOADED_EPOCHS, (
        f"only {len(values)} of {RUNS * LOADED_EPOCHS} points reached the page"
    )
    q = percentiles(values)
    return {
        "runs": RUNS,
        "epochs": LOADED_EPOCHS,
        "points": len(values),
        "ready_s": round(waited, 1),
        "train_s": round(train_s, 1),
        "live_latency_p50_20_runs_s": q["p50_s"],
        "live_latency_p95_20_runs_s": q["p95_s"],
        "live_latency_max_20_runs_s": q["max_s"],
        "load_average": os.getloadavg()[0],
    }


def measure(up_home: Path) -> dict[str, Any]:
    """Start the stack and log in a user; one run watched alone, then RUNS runs at once."""
    from playwright.sync_api import sync_playwright

    # One user streams RUNS runs at once: past the default quota of 4 concurrent runs.
    os.environ["NNT_QUOTA_MAX_CONCURRENT_RUNS"] = str(RUNS + 1)
    up = start_up(up_home, demo=False)
    try:
        base = up.wait_for(UP_LINE, 300).group(1).rstrip("/")
        up.ensure_user("bench", "bench-password")
        api = token_session(base, "bench", "bench-password")  # as a user's own script
        bootstrap = f"127.0.0.1:{up.ports['kafka']}"
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            alone = one_run(api, base, bootstrap, browser)
            loaded = many_runs(api, base, bootstrap, browser)
            browser.close()
    finally:
        up.interrupt()
    return {
        **alone,
        "loaded": loaded,
        "live_latency_p95_20_runs_s": loaded["live_latency_p95_20_runs_s"],
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
