"""Scale-out of the web: two `python -m web serve` processes, each bridging `nnt.live` to its
own browsers. Every update must reach the browsers of BOTH processes, so the bridges may not
share a consumer group (a shared group would split nnt.live's partitions between them)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from confluent_kafka import Producer

from infra.process import ServiceSpec
from infra.stack import http_ok
from schemas import topics
from tests.services import Running, free_port, start

ROOT = Path(__file__).resolve().parents[3]
HEALTHCHECK = ROOT / "infra" / "docker" / "healthcheck.py"
WARM_UP_S = 90.0
DELIVERY_S = 20.0


@pytest.fixture(scope="module")
def two_webs(
    django_ready: Path,
    web_db_url: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[int]]:
    """Two daphne processes on their own ports: one database, one NNT_HOME, one secret key."""
    from django.conf import settings

    logs = tmp_path_factory.mktemp("two-webs")
    ports: list[int] = []
    running: list[Running] = []
    try:
        for index in range(2):
            port = free_port()
            while port in ports:
                port = free_port()
            env = {
                "DJANGO_SETTINGS_MODULE": "web.settings",
                "DATABASE_URL": web_db_url,
                "NNT_HOME": str(django_ready),
                "NNT_SECRET_KEY": settings.SECRET_KEY,  # like NNT_SECRET_KEY on every web host
                "NNT_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "NNT_LIVE_BRIDGE": "true",
                "NNT_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "NNT_WEB_PORT": str(port),
                "PYTHONUNBUFFERED": "1",
            }
            url = f"http://127.0.0.1:{port}/"
            spec = ServiceSpec(
                name=f"web-{index}",
                argv=[sys.executable, "-m", "web", "serve"],
                env=env,
                cwd=str(ROOT),
                ready=lambda url=url: http_ok(url),  # the first request starts the bridge
                ready_timeout=60,
                ports=(port,),
                stop_timeout=20,
            )
            running.append(start(spec, logs / f"web-{index}.log"))
            ports.append(port)
        yield ports
    finally:
        for proc in running:
            proc.stop()


def _session_cookie(user: Any) -> str:
    """A logged-in session in the shared database, as a browser would hold it."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _update(simulation_id: uuid.UUID, epoch: int, values: dict[str, float]) -> bytes:
    return json.dumps(
        {
            "kind": "epochs",
            "simulation_id": str(simulation_id),
            "points": [{"epoch": epoch, "values": values}],
        }
    ).encode()


def _live_partitions(producer: Producer) -> list[int]:
    meta = producer.list_topics(topics.LIVE, timeout=10).topics[topics.LIVE]
    return sorted(meta.partitions)


async def _watch(port: int, path: str, cookie: str, inbox: list[dict[str, Any]]) -> None:
    """One browser socket (`path`) on one web process: collect every message until cancelled."""
    url = f"ws://127.0.0.1:{port}{path}"
    headers = {"Origin": f"http://127.0.0.1:{port}", "Cookie": f"sessionid={cookie}"}
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, headers=headers, heartbeat=None) as ws,
    ):
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                inbox.append(json.loads(message.data))


def _epochs(inbox: list[dict[str, Any]], metric: str) -> dict[int, float]:
    """Epoch -> value of `metric` in the live messages received."""
    return {
        p["epoch"]: p["values"][metric]
        for m in inbox
        if m.get("kind") == "epochs"
        for p in m["points"]
        if metric in p["values"]
    }


def test_it_delivers_each_live_update_to_the_browsers_of_every_web_process(
    two_webs: list[int], kafka_bootstrap: str, make_user: Any
) -> None:
    from web.simulations.models import Simulation

    owner = make_user()
    sim = Simulation.objects.create(owner=owner, owner_name=owner.get_username(), name="2 webs")
    cookie = _session_cookie(owner)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    partitions = _live_partitions(producer)
    assert len(partitions) == topics.PARTITIONS[topics.LIVE] > 1

    async def scenario() -> list[list[dict[str, Any]]]:
        inboxes: list[list[dict[str, Any]]] = [[] for _ in two_webs]
        watchers = [
            asyncio.create_task(_watch(port, f"/ws/simulations/{sim.id}/", cookie, inbox))
            for port, inbox in zip(two_webs, inboxes, strict=True)
        ]
        try:
            # Warm-up: the bridges read from the latest offset once assigned, so publish on
            # every partition until each process's browser has heard from every partition.
            # Bridges sharing one group would each own only some partitions: this never ends.
            deadline, round_ = time.monotonic() + WARM_UP_S, 0
            while not all(
                {int(v) for v in _epochs(i, "partition").values()} == set(partitions)
                for i in inboxes
            ):
                if time.monotonic() > deadline:
                    heard = "; ".join(
                        f"port {port}: {sorted({int(v) for v in _epochs(i, 'partition').values()})}"
                        for port, i in zip(two_webs, inboxes, strict=True)
                    )
                    pytest.fail(
                        f"a web process's browser never heard from every nnt.live partition "
                        f"{partitions} (do the bridges share a consumer group?): {heard}"
                    )
                for watcher in watchers:
                    if watcher.done():
                        watcher.result()  # a refused or broken socket fails with its reason
                round_ += 1
                for p in partitions:
                    producer.produce(
                        topics.LIVE,
                        _update(sim.id, 100_000 + round_ * 10 + p, {"partition": float(p)}),
                        key=str(sim.id).encode(),
                        partition=p,
                    )
                producer.flush(10)
                await asyncio.sleep(0.5)
            # The updates under test: one per partition, each must reach both browsers.
            for p in partitions:
                producer.produce(
                    topics.LIVE,
                    _update(sim.id, p + 1, {"loss": 1.0 / (p + 1)}),
                    key=str(sim.id).encode(),
                    partition=p,
                )
            producer.flush(10)
            deadline = time.monotonic() + DELIVERY_S
            want = {p + 1 for p in partitions}
            while not all(set(_epochs(i, "loss")) >= want for i in inboxes):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            return inboxes
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)

    inboxes = asyncio.run(scenario())
    expected = {p + 1: 1.0 / (p + 1) for p in partitions}
    for port, inbox in zip(two_webs, inboxes, strict=True):
        assert _epochs(inbox, "loss") == expected, f"browser of the web process on port {port}"


def test_it_reports_each_web_process_healthy_with_the_images_probe(two_webs: list[int]) -> None:
    for port in two_webs:
        env = {"NNT_WEB_PORT": str(port), "NNT_ALLOWED_HOSTS": "127.0.0.1,localhost", "PATH": ""}
        result = subprocess.run(
            [sys.executable, str(HEALTHCHECK), "web"], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("web healthy")
    nobody = subprocess.run(
        [sys.executable, str(HEALTHCHECK), "web"],
        env={"NNT_WEB_PORT": str(free_port()), "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert nobody.returncode == 1 and "web unhealthy" in nobody.stdout


def test_it_shows_a_tag_added_on_one_web_process_on_the_lists_of_the_other(
    two_webs: list[int], make_user: Any
) -> None:
    from web.accounts.models import ApiToken
    from web.simulations.models import Simulation

    owner = make_user()
    sim = Simulation.objects.create(owner=owner, owner_name=owner.get_username(), name="tagged")
    _, token = ApiToken.issue(owner, "two webs")
    cookie = _session_cookie(owner)
    first, second = two_webs

    def tags_seen(inbox: list[dict[str, Any]]) -> set[str]:
        return {
            tag
            for m in inbox
            if m.get("kind") == "simulation" and m.get("simulation_id") == str(sim.id)
            for tag in m["simulation"]["tags"]
        }

    async def scenario() -> list[dict[str, Any]]:
        inbox: list[dict[str, Any]] = []
        watcher = asyncio.create_task(_watch(second, "/ws/simulations/", cookie, inbox))
        try:
            await asyncio.sleep(1.0)  # the list socket joins its group
            auth = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=auth) as http:
                deadline, n = time.monotonic() + DELIVERY_S, 0
                # The bridge reads from the latest offset once assigned: keep tagging until
                # the other process's list hears of one.
                while not tags_seen(inbox) and time.monotonic() < deadline:
                    n += 1
                    url = f"http://127.0.0.1:{first}/api/simulations/{sim.id}/tags"
                    async with http.post(url, json={"tag": f"from-first-{n}"}) as resp:
                        assert resp.status == 200, await resp.text()
                    await asyncio.sleep(1.0)
            return inbox
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    inbox = asyncio.run(scenario())
    assert tags_seen(inbox) & {f"from-first-{i}" for i in range(1, 30)}, (
        f"the list on port {second} never heard of a tag added on port {first}: {inbox[-5:]}"
    )
