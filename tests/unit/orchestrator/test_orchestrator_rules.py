"""Auto-stop rules and the address guard's verdicts (pure logic)."""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path

import pytest

from orchestrator.fetch import refusal
from orchestrator.rules import Watch, run_resources
from orchestrator.settings import OrchestratorSettings
from schemas.accounts import Limits
from schemas.epochs import EpochEvent
from schemas.resources import ResourceSample


def test_it_stops_a_run_whose_loss_is_not_finite(tmp_path: Path) -> None:
    watch, sid = Watch(OrchestratorSettings(nnt_home=tmp_path)), uuid.uuid4()
    watch.started(sid)
    ok = EpochEvent(simulation_id=sid, epoch=1, total_epochs=3, metrics={"loss": 0.5})
    bad = EpochEvent(simulation_id=sid, epoch=2, total_epochs=3, metrics={"loss": float("nan")})
    assert watch.epoch(ok) is None
    assert watch.epoch(bad) == "auto-stop: loss is NaN or inf at epoch 2"


def test_it_stops_a_run_over_its_memory_and_one_that_stalls(tmp_path: Path) -> None:
    settings = OrchestratorSettings(nnt_home=tmp_path, nnt_stall_seconds=0.01)
    watch, sid = Watch(settings), uuid.uuid4()
    watch.started(sid)
    big = ResourceSample(
        simulation_id=sid, cpu_percent=1, memory_bytes=settings.nnt_run_memory_bytes + 1
    )
    assert "over its limit" in (watch.check(sid, big) or "")
    watch.paused(sid)
    assert watch.check(sid, None) is None, "a paused run is not stalled"
    watch.resumed(sid)
    watch.progress[sid] -= 1
    assert "no progress" in (watch.check(sid, None) or "")


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (None, (1024**3, 2.0)),
        (Limits(), (1024**3, 2.0)),
        (Limits(max_run_memory_bytes=256 * 1024**2, max_run_cpus=0.5), (256 * 1024**2, 0.5)),
        (Limits(max_run_memory_bytes=8 * 1024**3, max_run_cpus=16), (1024**3, 2.0)),
    ],
)
def test_a_runs_resources_are_the_hosts_lowered_to_the_owners_per_run_limits(
    tmp_path: Path, limits: Limits | None, expected: tuple[int, float]
) -> None:
    settings = OrchestratorSettings(nnt_home=tmp_path, nnt_run_memory_bytes=1024**3, nnt_run_cpus=2)
    assert run_resources(settings, limits) == expected


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.0.1",
    "169.254.169.254", "fd00:ec2::254", "100.64.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1",
    "::1", "fe80::1", "fc00::1", "ff02::1", "0.0.0.0", "240.0.0.1"])  # fmt: skip
def test_it_refuses_every_non_global_address(address: str) -> None:
    assert refusal(ipaddress.ip_address(address))


def test_it_allows_global_addresses_and_only_127_0_0_1_under_the_test_switch() -> None:
    assert refusal(ipaddress.ip_address("93.184.216.34")) is None
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert refusal(ipaddress.ip_address("127.0.0.2"), allow_loopback=True)
