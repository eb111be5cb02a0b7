"""A third-party Kafka client drives a run on the real stack by following docs/security.md
exactly: the command key from the REST API, docs/examples/kcat-command.sh (curl, jq, openssl,
kcat) to pause and resume. The same command unsigned, or signed by another user, is refused
with a status event naming why, and the run is left as it was."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from typing import Any

import pytest
import requests

from tests.e2e.stack import ROOT, UpProcess, started_run, token_session
from tests.polling import until

pytestmark = pytest.mark.e2e
USER, PASSWORD = "kcat-owner", "Quartz-Kcat-4711"
OTHER, OTHER_PASSWORD = "kcat-other", "Quartz-Other-4711"
SCRIPT = ROOT / "docs" / "examples" / "kcat-command.sh"


def run_script(stack: UpProcess, base: str, token: str, kind: str, sid: str) -> str:
    """docs/examples/kcat-command.sh exactly as the docs show it; the command id it sent."""
    env = {**os.environ, "NNT_URL": base, "NNT_TOKEN": token,
           "BROKER": f"127.0.0.1:{stack.ports['kafka']}"}  # fmt: skip
    for name in ("KEY", "PRINCIPAL", "KEY_ID"):
        env.pop(name, None)
    done = subprocess.run(  # noqa: S603 - the documented script
        ["bash", str(SCRIPT), kind, sid], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def answer(stack: UpProcess, command_id: str) -> dict[str, Any] | None:
    """The status event that answers `command_id` (nnt.status read from its beginning)."""
    from confluent_kafka import Consumer, TopicPartition

    bootstrap = f"127.0.0.1:{stack.ports['kafka']}"
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4()}"})
    try:
        parts = reader.list_topics("nnt.status", timeout=10).topics["nnt.status"].partitions
        ends = {p: reader.get_watermark_offsets(TopicPartition("nnt.status", p))[1] for p in parts}
        reader.assign([TopicPartition("nnt.status", p, 0) for p in parts])
        deadline = time.monotonic() + 20
        while any(ends.values()) and time.monotonic() < deadline:
            msg = reader.poll(0.5)
            if msg is None or msg.error():
                continue
            if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                ends[msg.partition()] = 0
            event = json.loads(msg.value())
            if event.get("command_id") == command_id and event.get("status") != "queued":
                return event
    finally:
        reader.close()
    return None


def test_kcat_pauses_and_resumes_by_the_docs_and_unsigned_or_foreign_commands_are_refused(
    stack: UpProcess, base: str, api: requests.Session
) -> None:
    token = api.headers["Authorization"].removeprefix("Bearer ")
    sid = started_run(api, base, "kcat")
    state = lambda: api.get(f"{base}/api/simulations/{sid}").json()["status"]  # noqa: E731

    forged = str(uuid.uuid4())  # the old way: plain JSON naming the owner
    line = json.dumps({"type": "pause", "command_id": forged, "simulation_id": sid,
                       "issued_by": USER})  # fmt: skip
    subprocess.run(  # noqa: S603 - kcat
        ["kcat", "-b", f"127.0.0.1:{stack.ports['kafka']}", "-t", "nnt.commands", "-P", "-K",
         "\t"], input=f"{sid}\t{line}\n", text=True, check=True, timeout=30,
    )  # fmt: skip
    refused = until(lambda: answer(stack, forged), 60, "the unsigned pause answered")
    assert refused["status"] == "rejected" and "unauthenticated" in refused["message"]

    stack.ensure_user(OTHER, OTHER_PASSWORD)
    other_token = token_session(base, OTHER, OTHER_PASSWORD).headers["Authorization"][7:]
    foreign = run_script(stack, base, other_token, "pause", sid)
    refused = until(lambda: answer(stack, foreign), 60, "another user's pause answered")
    assert refused["status"] == "rejected" and "belongs to another user" in refused["message"]
    assert state() == "running", "refused commands leave the run as it was"

    paused = run_script(stack, base, token, "pause", sid)
    until(lambda: state() == "paused", 60, "kcat's signed pause")
    assert until(lambda: answer(stack, paused), 30, "the pause event")["status"] == "paused"
    run_script(stack, base, token, "resume", sid)
    until(lambda: state() == "running", 60, "kcat's signed resume")
    run_script(stack, base, token, "delete", sid)

    def gone() -> bool:
        got = api.get(f"{base}/api/simulations/{sid}")
        return got.status_code == 404 or got.json()["status"] == "deleted"

    until(gone, 60, "kcat's signed delete")
