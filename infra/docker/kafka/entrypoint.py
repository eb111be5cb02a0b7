"""Entrypoint of the local Kafka stand-in image: the official apache/kafka image's start, in short.

Writes server.properties from the KAFKA_* variables as the official image does (the prefix
dropped, lower case, `___` -> `-`, `__` -> `_`, `_` -> `.`), formats the KRaft storage with
CLUSTER_ID when it is new, then becomes the broker (exec: it gets the container's signals).
Without any KAFKA_* setting it runs the official image's default single node.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HOME = Path(os.environ.get("KAFKA_HOME", "/opt/kafka"))
CONFIG = HOME / "config"
# Variables the official image reads itself rather than passing to the broker.
EXCLUDED = {
    "KAFKA_VERSION",
    "KAFKA_HOME",
    "KAFKA_HEAP_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    "KAFKA_JMX_HOSTNAME",
    "KAFKA_JMX_PORT",
}
UNDERSCORES = {"_": ".", "__": "_", "___": "-"}
# The official image's config/server.properties for a bare `docker run apache/kafka`.
DEFAULTS = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.quorum.voters": "1@localhost:9093",
    "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093",
    "advertised.listeners": "PLAINTEXT://localhost:9092",
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "inter.broker.listener.name": "PLAINTEXT",
    "log.dirs": "/var/lib/kafka/data",
    "num.partitions": "1",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
}
DEFAULT_CLUSTER_ID = "5L6g3nShT-eMCtK--X86sw"  # the official image's, for a bare run
PERFORMANCE_OPTS = (
    "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 "
    "-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"
)


def property_name(variable: str) -> str:
    """KAFKA_LISTENER_SECURITY_PROTOCOL_MAP -> listener.security.protocol.map."""
    name = variable.removeprefix("KAFKA_").lower()
    return re.sub(r"_{1,3}", lambda m: UNDERSCORES[m.group()], name)


def properties(env: dict[str, str]) -> dict[str, str]:
    """The broker's settings from the environment (the defaults when it sets none)."""
    props = {
        property_name(key): value
        for key, value in sorted(env.items())
        if key.startswith("KAFKA_") and key not in EXCLUDED
    }
    return props or dict(DEFAULTS)


def write(props: dict[str, str]) -> Path:
    """server.properties in the writable config folder; returns its path."""
    path = CONFIG / "server.properties"
    # Java properties: a backslash and a line end would change the value.
    text = "".join(f"{k}={v.replace(chr(92), chr(92) * 2)}\n" for k, v in props.items())
    path.write_text(text)
    return path


def java(main: str, *args: str, opts: list[str]) -> list[str]:
    """The command line of one of Kafka's Java mains."""
    return ["java", *opts, "-cp", f"{HOME}/libs/*", main, *args]


def main() -> int:
    """Configure, format once, exec the broker."""
    env = dict(os.environ)
    props = properties(env)
    config = write(props)
    log4j = env.get(
        "KAFKA_LOG4J_OPTS", f"-Dlog4j.configuration=file:{CONFIG}/defaults/log4j.properties"
    )
    cluster_id = env.get("CLUSTER_ID") or DEFAULT_CLUSTER_ID
    fmt = java(
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(config),
        "--ignore-formatted",
        opts=["-Xmx256m", log4j],
    )
    if subprocess.run(fmt).returncode != 0:
        print("kafka: formatting the storage failed", file=sys.stderr, flush=True)
        return 1
    opts = [
        *env.get("KAFKA_HEAP_OPTS", "-Xmx1G -Xms256m").split(),
        *env.get("KAFKA_JVM_PERFORMANCE_OPTS", PERFORMANCE_OPTS).split(),
        log4j,
        *env.get("KAFKA_OPTS", "").split(),
    ]
    argv = java("kafka.Kafka", str(config), opts=opts)
    os.execvp(argv[0], argv)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
