"""Time to interactive of the heaviest pages in headless Chromium, each against a peer page
loaded in the same run from the same server.

- Layers: a run's Graphs tab with LAYERS layers (DenseNet121-sized: a kernel, a bias, the
  kernel's gradient and the activations of each, EPOCHS epochs), drawn lazily: statistics of
  every layer first, a layer's histograms and charts as it scrolls into view. Peer: the same
  page with `?eager=1`, which fetches every histogram and draws every chart at once.
- Runs table: `/simulations/` of a user with RUNS runs, then a sort by name (`?sort=-name`) to
  the next paint. Peer: the same page of a user with PEER_RUNS runs.

Time to interactive (TTI): from navigation start to the later of the page's own "drawn" signal
and the end of the last long task (a main-thread task over 50 ms, PerformanceObserver
`longtask`) before QUIET_MS without one; from then on the page answers input within 50 ms. The
longest task and the total blocking time (each long task's time over 50 ms, summed) come with
it. Median of REPEATS loads after a warm-up load. `python -m bench.pages` prints JSON.

Another page is a few lines: a `Check` for it and for its peer, and `compare()` (see
`runs_table()`).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.ingest import database
from bench.queries import django_up
from schemas.tensors import TensorHeader, unpack
from stream_processors import rows
from trainer import stats
from trainer.reporting import tensor_messages

LAYERS = 150
EPOCHS = 20
RUNS = 10_000
PEER_RUNS = 100
REPEATS = 3
QUIET_MS = 1000
PASSWORD = "bench-password-1"
VIEWPORT = {"width": 1366, "height": 900}
# Every long task the page runs, from before its first script.
LONG_TASKS = """
window.__nntLong = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) { window.__nntLong.push([e.startTime, e.duration]); }
}).observe({ type: "longtask", buffered: true });
"""


# Layer charts drawn, and bytes of layer data (statistics, histograms) the page read.
SIZES = """({
  charts: window.nntLayers.charts,
  tensors_bytes: performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/tensors") && !e.name.includes("/tensors/values"))
    .reduce((n, e) => n + e.encodedBodySize, 0),
})"""


@dataclass(frozen=True)
class Check:
    """A page to load, and a JS expression: the page-clock time (ms) its first content was
    drawn, falsy until then."""

    path: str
    ready: str
    repeats: int = REPEATS
    warm: bool = True  # one load first, not counted


def layer_rows(
    sim: uuid.UUID, layers: int = LAYERS, epochs: int = EPOCHS, flag_every: int = 7
) -> list[rows.Row]:
    """nnt_tensor rows as the trainer sends and the worker stores them: per layer a kernel, a
    bias, the kernel's gradient and activation statistics at every epoch (real 32-bin
    histograms); whole values of the first layer only; every `flag_every`-th layer's
    activations have dead units (flagged) from epoch 5."""
    rng = np.random.default_rng(0)
    t0, out = datetime(2025, 3, 1, tzinfo=UTC), []
    for i in range(layers):
        name = f"conv{i // 6 + 1}_block{i % 6 + 1}_conv"
        kernel = rng.normal(0, 0.1, (3, 3, 8, 8)).astype(np.float32)
        bias = np.zeros(8, np.float32)
        for epoch in range(1, epochs + 1):
            kernel *= np.float32(1 + 0.02 * rng.standard_normal())
            bias += rng.normal(0, 0.01, 8).astype(np.float32)
            grad = rng.normal(0, 0.01 / epoch, kernel.shape).astype(np.float32)
            act = np.maximum(rng.normal(0.2, 1, (32, 8)), 0).astype(np.float32)
            if i % flag_every == flag_every - 1 and epoch >= 5:
                act[:, :6] = 0
            act_stats = stats.tensor_stats(act)
            if (act == 0).all(axis=0).mean() >= 0.5:  # as the dead_units diagnosis names it
                act_stats.flags += ["dead_units"]
            for kind, variable, value, st, full in (
                ("kernel", f"{name}/kernel", kernel, stats.tensor_stats(kernel), i == 0),
                ("bias", f"{name}/bias", bias, stats.tensor_stats(bias), i == 0),
                ("gradient", f"{name}/kernel", grad, stats.tensor_stats(grad), False),
                ("activation", f"{name}/output", act, act_stats, False),
            ):
                header = TensorHeader(
                    simulation_id=sim, epoch=epoch, layer_index=i, layer_name=name, kind=kind,
                    variable=variable, dtype="float32", stats=st, at=t0 + timedelta(minutes=epoch),
                    shape=list(value.shape) if kind != "activation" else [],
                )  # fmt: skip
                out += [rows.tensor_row(*unpack(m)) for m in tensor_messages(header, value if full else None)]  # fmt: skip
    return out


def runs(owner: Any, count: int) -> None:
    """`count` finished runs of `owner` named `run 00000`…, with a grid's hyperparameters."""
    from web.simulations.models import Simulation

    optimizers = ("Adam", "SGD", "RMSprop")
    Simulation.objects.bulk_create(
        [
            Simulation(
                owner=owner,
                owner_name=owner.username,
                name=f"run {i:05d}",
                status="finished",
                epoch=20,
                total_epochs=20,
                index=i,
                config={
                    "optimizer": {"optimizer": optimizers[i % 3]},
                    "learning_rate": 10 ** -(1 + i % 4),
                    "loss": {"loss_function": "categorical_crossentropy"},
                },
            )
            for i in range(count)
        ],
        batch_size=2000,
    )


def user(name: str) -> Any:
    """A user who logs in with PASSWORD."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(name, password=PASSWORD)


def settle(page: Any, timeout_s: float = 180) -> list[list[float]]:
    """Wait until QUIET_MS have passed without a long task; the page's long tasks."""
    deadline = time.monotonic() + timeout_s
    while True:
        now, tasks = page.evaluate("[performance.now(), window.__nntLong || []]")
        if now - max((s + d for s, d in tasks), default=0.0) >= QUIET_MS:
            return tasks
        if time.monotonic() > deadline:
            raise TimeoutError(f"{page.url}: the main thread never went quiet")
        page.wait_for_timeout(200)


def load(page: Any, base: str, check: Check) -> dict[str, float]:
    """One load of `check`: TTI, its drawn signal, longest task and blocking time (ms)."""
    page.bring_to_front()  # a page in the background gets no animation frames
    page.goto(base + check.path)
    ready = page.wait_for_function(check.ready, polling="raf", timeout=180_000).json_value()
    tasks = settle(page)
    last = max((s + d for s, d in tasks), default=0.0)
    return {
        "tti_ms": max(float(ready), last),
        "drawn_ms": float(ready),
        "longest_task_ms": max((d for _, d in tasks), default=0.0),
        "blocking_ms": sum(max(0.0, d - 50) for _, d in tasks),
    }


def median(page: Any, base: str, check: Check, extra: Callable[[Any], dict] | None = None) -> dict:
    """Median of each figure over the check's loads (after a warm-up load unless it says
    not); `extra` adds figures read from the page after each load (their medians too)."""
    if check.warm:
        load(page, base, check)
    samples = []
    for _ in range(check.repeats):
        sample = load(page, base, check)
        samples.append(sample | (extra(page) if extra else {}))
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def compare(ours: tuple[Any, Check], peer: tuple[Any, Check], base: str, **kw: Any) -> dict:
    """Both pages' medians and ours / peer for each figure (pages logged in as need be)."""
    a, b = median(ours[0], base, ours[1], **kw), median(peer[0], base, peer[1], **kw)
    return {"ours": a, "peer": b, "ratio": {k: a[k] / b[k] if b[k] else None for k in a}}


def sort_s(page: Any, base: str, path: str, first: str) -> float:
    """Seconds from a sort by name, descending, to the next paint with `first` as first row:
    a click on the table's own sort link where it has one, else its URL (`?sort=-name`)."""
    page.bring_to_front()
    page.goto(base + path)
    settle(page)
    t0 = time.perf_counter()
    link = page.locator('#simulations thead a[href*="sort=-name"]')
    if link.count():
        link.first.click()
    else:
        page.goto(base + path + "?sort=-name")
    probe = f"(document.querySelector('#simulations tbody tr') || {{}}).textContent?.includes({first!r})"
    page.wait_for_function(probe, polling="raf", timeout=60_000)
    page.evaluate("new Promise((r) => requestAnimationFrame(() => r(0)))")
    return time.perf_counter() - t0


def layers(pages: dict[str, Any], base: str, sid: uuid.UUID) -> dict[str, Any]:
    """The many-layer Graphs tab, lazy against eager."""
    ready = "window.nntLayers && window.nntLayers.ready"
    charts = lambda page: page.evaluate(SIZES)  # noqa: E731
    lazy = Check(f"/simulations/{sid}/#graphs", ready)
    # The eager page takes 20-30 s a load, its spread small next to that; the lazy page's
    # loads warmed the server and the browser's cache for it.
    eager = Check(f"/simulations/{sid}/?eager=1#graphs", ready, repeats=1, warm=False)
    got = compare((pages["layers"], lazy), (pages["layers"], eager), base, extra=charts)
    return {"layers": LAYERS, "epochs": EPOCHS, **got}


def runs_table(pages: dict[str, Any], base: str) -> dict[str, Any]:
    """The runs list with RUNS runs against PEER_RUNS; then a sort click on each."""
    ready = "document.querySelector('#simulations tbody tr') && performance.now()"
    check = Check("/simulations/", ready)
    got = compare((pages["many"], check), (pages["few"], check), base)
    many = statistics.median(
        sort_s(pages["many"], base, "/simulations/", f"run {RUNS - 1:05d}") for _ in range(REPEATS)
    )
    few = statistics.median(
        sort_s(pages["few"], base, "/simulations/", f"run {PEER_RUNS - 1:05d}")
        for _ in range(REPEATS)
    )
    return {"runs": RUNS, "peer_runs": PEER_RUNS, **got, "sort_s": many, "peer_sort_s": few,
            "sort_ratio": many / few}  # fmt: skip


@contextmanager
def logged_in(browser: Any, base: str, names: dict[str, str]) -> Iterator[dict[str, Any]]:
    """One browser context per user, logged in, timing long tasks; pages by role."""
    from tests.e2e.stack import log_in

    contexts, pages = [], {}
    for role, name in names.items():
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(LONG_TASKS)
        page = context.new_page()
        log_in(page, f"{base}/simulations/", name, PASSWORD)
        contexts.append(context)
        pages[role] = page
    try:
        yield pages
    finally:
        for context in contexts:
            context.close()


def measure(url: str, home: Path) -> dict[str, Any]:
    """Fill the database, serve the web on it, and time both pages against their peers."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.stack import launch_chromium
    from tests.integration.web.conftest import serving
    from tests.timeseries_data import write
    from web.simulations.models import Simulation

    started = time.monotonic()
    tag = uuid.uuid4().hex[:6]
    names = {"layers": f"layers{tag}", "many": f"many{tag}", "few": f"few{tag}"}
    owners = {role: user(name) for role, name in names.items()}
    sim = Simulation.objects.create(owner=owners["layers"], owner_name=names["layers"],
        name="densenet121-like", status="finished", epoch=EPOCHS, total_epochs=EPOCHS)  # fmt: skip
    write(url, {rows.TENSOR: layer_rows(sim.id)})
    runs(owners["many"], RUNS)
    runs(owners["few"], PEER_RUNS)
    with serving(home, url, "127.0.0.1:9", home / "web.log") as web, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            with logged_in(browser, web.url, names) as pages:
                out = {"bench": "pages", "repeats": REPEATS, "quiet_ms": QUIET_MS,
                       "setup_s": time.monotonic() - started}  # fmt: skip
                out["layers"] = layers(pages, web.url, sim.id)
                out["runs_table"] = runs_table(pages, web.url)
        finally:
            browser.close()
    return out | headline(out)


def headline(out: dict[str, Any]) -> dict[str, Any]:
    """The flat figures of bench/results.json."""
    lay, tab = out.get("layers", {}), out.get("runs_table", {})
    if not lay or not tab:
        return {}
    return {
        "layers_tti_s": lay["ours"]["tti_ms"] / 1000,
        "layers_eager_tti_s": lay["peer"]["tti_ms"] / 1000,
        "layers_tti_vs_eager_ratio": lay["ratio"]["tti_ms"],
        "runs_table_tti_s": tab["ours"]["tti_ms"] / 1000,
        "runs_table_tti_vs_100_runs_ratio": tab["ratio"]["tti_ms"],
        "runs_table_sort_s": tab["sort_s"],
        "runs_table_sort_vs_100_runs_ratio": tab["sort_ratio"],
    }


# figure -> (what it is, peer); in the report's table, in this order.
FIGURES = {
    "layers_tti_s": (f"Graphs tab of a {LAYERS}-layer run, {EPOCHS} epochs: time to interactive (s)",
                     "-"),
    "layers_eager_tti_s": ("the same page drawing every chart at once (`?eager=1`) (s)", "-"),
    "layers_tti_vs_eager_ratio": ("lazy / eager time to interactive", "`?eager=1`"),
    "runs_table_tti_s": (f"runs table, {RUNS:,} runs: time to interactive (s)", "-"),
    "runs_table_tti_vs_100_runs_ratio": (f"{RUNS:,} runs / {PEER_RUNS} runs time to interactive",
                                         f"{PEER_RUNS} runs"),
    "runs_table_sort_s": ("sort by name, click to next paint (s)", "-"),
    "runs_table_sort_vs_100_runs_ratio": (f"{RUNS:,} runs / {PEER_RUNS} runs sort", f"{PEER_RUNS} runs"),
}  # fmt: skip


LIMITS = (
    "Time to interactive: from navigation start to the later of the page's own drawn signal "
    f"and the end of its last task over 50 ms before {QUIET_MS} ms without one. What limits "
    "the Graphs tab: evaluating Plotly's script (its longest task, paid by both pages) and "
    "reading every layer's statistics in one request; the layer cards below the fold draw "
    "nothing until scrolled to, the 3-D scatter (WebGL) neither. The runs table renders one "
    "page of rows whatever the number of runs: its ratios are what 100 times more runs cost "
    "the server's count, sort and page query."
)


def table(out: dict[str, Any]) -> str:
    """The report's table of these figures (docs/benchmarks.md)."""
    lines = [
        "| figure | value | what | peer |", "|---|---|---|---|",
    ]  # fmt: skip
    flat = headline(out)
    for key, (what, peer) in FIGURES.items():
        value = flat.get(key)
        lines.append(
            f"| `{key}` | {'failed' if value is None else f'{value:.3g}'} | {what} | {peer} |"
        )
    lines += ["", LIMITS]
    lay = out.get("layers", {})
    if lay:
        ours, peer = lay["ours"], lay["peer"]
        lines += ["", (
            f"Layer charts drawn at load: {ours.get('charts', 0):.0f} lazily, "
            f"{peer.get('charts', 0):.0f} eagerly; layer data read: "
            f"{ours.get('tensors_bytes', 0) / 1e6:.2f} MB against "
            f"{peer.get('tensors_bytes', 0) / 1e6:.2f} MB; longest task: "
            f"{ours['longest_task_ms']:.0f} ms against {peer['longest_task_ms']:.0f} ms."
        )]  # fmt: skip
    return "\n".join(lines)


def run() -> dict[str, Any]:
    """A fresh database (or NNT_TEST_DATABASE_URL), Django migrated on it, then measure."""
    # Nothing listens on port 9: no page here publishes a command.
    os.environ.update({"NNT_KAFKA_BOOTSTRAP": "127.0.0.1:9", "NNT_KAFKA_TIMEOUT_S": "1"})
    with database() as url, tempfile.TemporaryDirectory(prefix="nnt-bench-pages-") as home:
        Path(home).chmod(0o755)
        django_up(url, home)
        return measure(url, Path(home))


if __name__ == "__main__":
    out = run()
    print(json.dumps(out, indent=2))
    print(table(out))
