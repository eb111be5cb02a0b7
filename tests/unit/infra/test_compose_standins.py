"""The local stand-ins for the official Kafka and TimescaleDB images (infra/docker/kafka/,
infra/docker/timescaledb/) give docker-compose.yml what it relies on, read without an engine;
tests/integration/compose runs them."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import yaml

from infra import kafka

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "infra" / "docker"
COMPOSE = ROOT / "docker-compose.yml"
SASL_OVERLAY = DOCKER / "compose.sasl.yml"


def _entrypoint() -> Any:
    """infra/docker/kafka/entrypoint.py (copied into the image, not a package) as a module."""
    spec = importlib.util.spec_from_file_location(
        "nnt_kafka_entrypoint", DOCKER / "kafka" / "entrypoint.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


entrypoint = _entrypoint()


def kafka_service(*overlays: Path) -> dict[str, Any]:
    """The kafka service of the compose file with its overlays (environment merged)."""
    service = yaml.safe_load(COMPOSE.read_text())["services"]["kafka"]
    for overlay in overlays:
        extra = yaml.safe_load(overlay.read_text())["services"]["kafka"]
        service = {
            **service,
            **extra,
            "environment": {**service["environment"], **extra["environment"]},
        }
    return service


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(KEYWORD, argument) of each instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_it_names_kafka_settings_as_the_official_image_does() -> None:
    assert entrypoint.property_name("KAFKA_LOG_DIRS") == "log.dirs"
    assert entrypoint.property_name("KAFKA_FOO__BAR") == "foo_bar"
    assert entrypoint.property_name("KAFKA_FOO___BAR") == "foo-bar"
    props = entrypoint.properties({"KAFKA_HEAP_OPTS": "-Xmx1g", "PATH": "/bin"})
    assert props == entrypoint.DEFAULTS  # no broker setting: the official default node


def test_it_configures_the_broker_compose_describes_like_the_local_stack(tmp_path: Path) -> None:
    env = {k: str(v) for k, v in kafka_service()["environment"].items()}
    props = entrypoint.properties(env)
    assert props["node.id"] == "1" and "cluster.id" not in props  # CLUSTER_ID formats storage
    local = dict(
        line.split("=", 1) for line in kafka.write_config(tmp_path, 9092).read_text().splitlines()
    )
    shared = (
        "process.roles", "controller.listener.names", "inter.broker.listener.name",
        "num.partitions", "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
        "group.initial.rebalance.delay.ms", "message.max.bytes", "replica.fetch.max.bytes",
        "log.retention.hours",
    )  # fmt: skip
    assert {k: props[k] for k in shared} == {k: local[k] for k in shared}
    assert props["log.dirs"] == "/var/lib/kafka/data"


def test_it_takes_the_sasl_overlays_listener_settings() -> None:
    env = {k: str(v) for k, v in kafka_service(SASL_OVERLAY)["environment"].items()}
    props = entrypoint.properties(env)
    jaas = props["listener.name.internal.plain.sasl.jaas.config"]
    assert jaas.startswith("org.apache.kafka.common.security.plain.PlainLoginModule required")
    assert props["authorizer.class.name"] == kafka.AUTHORIZER
    assert props["sasl.mechanism.inter.broker.protocol"] == "PLAIN"


def test_it_gives_the_kafka_health_check_its_tool_and_a_data_folder() -> None:
    service = kafka_service()
    steps = instructions(DOCKER / "kafka" / "Dockerfile")
    tool = service["healthcheck"]["test"][1].split()[0]
    assert tool == "/opt/kafka/bin/kafka-broker-api-versions.sh"
    assert ("COPY", f"kafka-broker-api-versions.sh {tool}") in steps
    assert (DOCKER / "kafka" / "kafka-broker-api-versions.sh").stat().st_mode & 0o111
    data = service["environment"]["KAFKA_LOG_DIRS"]
    assert any(v.endswith(f":{data}") for v in service["volumes"])
    assert ("VOLUME", data) in steps


def test_it_keeps_the_database_where_compose_mounts_it() -> None:
    # PostgreSQL 18 images: PGDATA /var/lib/postgresql/18/docker, VOLUME /var/lib/postgresql.
    db = yaml.safe_load(COMPOSE.read_text())["services"]["db"]
    steps = instructions(DOCKER / "timescaledb" / "Dockerfile")
    (volume,) = db["volumes"]
    target = volume.split(":")[1]
    assert target == "/var/lib/postgresql"
    assert ("VOLUME", target) in steps
    env = " ".join(arg for kw, arg in steps if kw == "ENV")
    assert f"PGDATA={target}/${{PG_MAJOR}}/docker" in env
    assert db["healthcheck"]["test"][1].startswith("pg_isready ")
    script = (DOCKER / "timescaledb" / "docker-entrypoint.sh").read_text()
    for variable in db["environment"]:
        assert f"${{{variable}" in script or f"${variable}" in script, variable
    assert "shared_preload_libraries = 'timescaledb'" in script
    assert "host all all all scram-sha-256" in script


def test_it_runs_both_as_unprivileged_users_and_says_they_stand_in() -> None:
    for folder, official in (("kafka", "apache/kafka:"), ("timescaledb", "timescale/timescaledb:")):
        dockerfile = DOCKER / folder / "Dockerfile"
        header = dockerfile.read_text().split("\n\n")[0]
        assert "Local stand-in for the official" in header and official in header, folder
        users = [arg for kw, arg in instructions(dockerfile) if kw == "USER"]
        assert users and users[-1] not in ("root", "0"), folder
        assert [arg for kw, arg in instructions(dockerfile) if kw == "FROM"] == ["${BASE_IMAGE}"]
