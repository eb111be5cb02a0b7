"""Each component's own Kafka principal, on a real broker that authorizes as production does.

The session broker's SASL listener (tests/services.py) runs KRaft's StandardAuthorizer with
nothing allowed without an ACL; this module applies infra/kafkaacl.py's ACLs the way an
operator does (`python -m infra.kafkaacl apply`, as nnt-admin over SASL). Then:

- every principal produces and reads, with clients configured as its component's are, and
  the broker's answer is compared with what the component does in its code (PRODUCES and
  READS below, written from the components, not from the ACL table): allowed where the
  component needs it, the broker's authorization error everywhere else;
- a real stream worker logged in as nnt-stream stores the events of a real trainer publisher
  logged in as nnt-trainer, and a real orchestrator logged in as nnt-orchestrator runs an
  experiment whose trainer logs in as nnt-trainer, from commands and account records the
  web's principal sent.

Observers that are not components (taps, markers) use the PLAINTEXT listener, whose
principal is a super user.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import TopicAuthorizationFailedError
from confluent_kafka import OFFSET_END, Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from infra import kafka, kafkaacl
from infra.settings import InfraError
from schemas import topics
from schemas.codecs import dumps
from schemas.commands import CreateCommand, LifecycleCommand, command_key
from schemas.epochs import EpochEvent
from schemas.experiment import simulation_id
from schemas.kafkaauth import KafkaSecurity
from schemas.live import LiveUpdate
from schemas.resources import ResourceSample
from schemas.status import StatusEvent
from schemas.tensors import TensorHeader, TensorStats, pack
from stream_processors import deadletter
from tests import polling
from tests.accounts import USERS, record, sign_as
from tests.integration.orchestrator.conftest import Orch, Tap, demo_experiment, skip_history
from tests.integration.orchestrator.conftest import until as orch_until
from tests.services import NO_ACL_USER, PASSWORDS
from tests.streamworker import Reader, Worker, rows, run_key, until
from trainer.publisher import KafkaPublisher, send_event

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30.0
WEB, OPERATOR, ORCHESTRATOR, TRAINER, STREAM = (
    "nnt-web",
    "nnt-operator",
    "nnt-orchestrator",
    "nnt-trainer",
    "nnt-stream",
)
COMPONENTS = (WEB, OPERATOR, ORCHESTRATOR, TRAINER, STREAM)
DENIED = KafkaError.TOPIC_AUTHORIZATION_FAILED
GROUP_DENIED = KafkaError.GROUP_AUTHORIZATION_FAILED
ORCH_EPOCHS = 2
ORCH_GROUP = kafkaacl.ORCHESTRATOR_GROUP  # the product default, as the ACLs were applied
STREAM_GROUP = kafkaacl.STREAM_GROUP

# What each component produces, from its code: web/simulations/commands.py, web/live/notify.py,
# web/accounts/records.py; kcat; orchestrator/publisher.py; trainer/callback.py + runner.py;
# stream_processors/outputs.py.
PRODUCES: dict[str, set[str]] = {
    WEB: {topics.COMMANDS, topics.LIVE, topics.ACCOUNTS},
    OPERATOR: {topics.COMMANDS},
    ORCHESTRATOR: {topics.STATUS, topics.RESOURCES, topics.COMMANDS},
    TRAINER: {topics.EPOCHS, topics.TENSORS, topics.STATUS},
    STREAM: {topics.LIVE, topics.DEAD_LETTER},
}


@dataclass(frozen=True)
class Read:
    """How a component reads a topic: its consumer group, and whether it joins it
    (subscribe) or assigns partitions itself."""

    group: str | None
    joins: bool


# What each component reads, from its code: web/live/bridge.py (aiokafka, no group) and
# web/simulations/preflight.py (assigned, group named, never joined); orchestrator/consumer.py
# (shared and per-host groups, the accounts consumer assigns); the Faust app's group.
READS: dict[str, dict[str, Read]] = {
    WEB: {topics.LIVE: Read(None, False), topics.STATUS: Read("nnt.web.preflight", False)},
    OPERATOR: {},
    ORCHESTRATOR: {
        topics.COMMANDS: Read(ORCH_GROUP, True),
        topics.EPOCHS: Read(f"{ORCH_GROUP}.host.acl-host.epochs", True),
        topics.ACCOUNTS: Read(f"{ORCH_GROUP}.accounts.acl-host", False),
    },
    TRAINER: {},
    STREAM: {
        t: Read(STREAM_GROUP, True)
        for t in (topics.EPOCHS, topics.TENSORS, topics.STATUS, topics.RESOURCES)
    },
}


def login(user: str) -> KafkaSecurity:
    """The settings a component logged in as `user` reads from its NNT_KAFKA_* variables."""
    return KafkaSecurity(**{k.lower(): v for k, v in login_env(user).items()})


def login_env(user: str) -> dict[str, str]:
    """The NNT_KAFKA_* variables of a component that logs in as `user`."""
    return {
        "NNT_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "NNT_KAFKA_SASL_MECHANISM": "PLAIN",
        "NNT_KAFKA_SASL_USERNAME": user,
        "NNT_KAFKA_SASL_PASSWORD": PASSWORDS[user],
    }


def run_apply(
    bootstrap: str, user: str, timeout: float = TIMEOUT_S, **override: str
) -> tuple[int, str, str]:
    """`python -m infra.kafkaacl apply` logged in as `user`: exit status, stdout, stderr."""
    with pytest.MonkeyPatch.context() as env:
        variables = {**login_env(user), "NNT_KAFKA_BOOTSTRAP": bootstrap, **override}
        for name, value in variables.items():
            env.setenv(name, value)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = kafkaacl.main(["apply", "--timeout", str(timeout)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def acl_bootstrap(kafka_sasl_bootstrap: str) -> str:
    """The SASL listener once infra/kafkaacl.py's ACLs are in place (as nnt-admin)."""
    code, out, err = run_apply(kafka_sasl_bootstrap, kafkaacl.ADMIN)
    assert code == 0, err
    assert f"{len(kafkaacl.bindings())} ACLs in place" in out
    return kafka_sasl_bootstrap


# ---- probes: one message out, one message in -----------------------------------------------


def probe(topic: str) -> tuple[bytes, bytes]:
    """What a probe writes (key, value): a well-formed message of the topic about a simulation
    nobody has, since every later test's readers of the session's topics parse it (taps,
    stream workers, orchestrators): an unsigned `stop`, an unsigned event, a dead letter, a
    test user's account record on the compacted accounts topic."""
    sid = uuid.uuid4()
    header = TensorHeader(simulation_id=sid, epoch=1, layer_index=0, layer_name="dense",
                          kind="kernel", shape=[2], stats=TensorStats(mean=0.5))  # fmt: skip
    values = {
        topics.COMMANDS: dumps(LifecycleCommand(type="stop", simulation_id=sid, issued_by="kcat")),
        topics.STATUS: dumps(StatusEvent(simulation_id=sid, status="running", epoch=1)),
        topics.EPOCHS: dumps(
            EpochEvent(simulation_id=sid, epoch=1, total_epochs=1, metrics={"loss": 1.0})
        ),  # fmt: skip
        topics.TENSORS: pack(header, b"ab"),
        topics.RESOURCES: dumps(ResourceSample(simulation_id=sid, cpu_percent=0, memory_bytes=0)),
        topics.LIVE: dumps(LiveUpdate(kind="epochs", simulation_id=sid)),
        topics.DEAD_LETTER: deadletter.envelope(
            topics.EPOCHS, 0, 0, str(sid).encode(), b"{}", "nnt-acl probe"
        ),  # fmt: skip
        topics.ACCOUNTS: dumps(record("kcat")),
    }
    assert set(values) == set(topics.ALL_TOPICS)
    key = str(USERS["kcat"]) if topic == topics.ACCOUNTS else str(sid)
    return key.encode(), values[topic]


def produce_outcomes(bootstrap: str, security: KafkaSecurity) -> dict[str, int | None]:
    """One message to every product topic from a producer configured as the components'
    (idempotent, acks=all, their credentials): per topic, the delivery error code or None."""
    outcomes: dict[str, int | None] = {}
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": int(TIMEOUT_S * 1000),
            **security.confluent_config(),
        }
    )

    def delivered(topic: str) -> object:
        return lambda err, _msg: outcomes.__setitem__(topic, err.code() if err else None)

    for topic in topics.ALL_TOPICS:
        key, value = probe(topic)
        producer.produce(topic, key=key, value=value, on_delivery=delivered(topic))
    assert producer.flush(TIMEOUT_S + 5) == 0
    return outcomes


def marker(plain_bootstrap: str, topic: str) -> TopicPartition:
    """A probe message on partition 0 of `topic`, written as a super user; where it is."""
    found: list[Message] = []
    producer = Producer({"bootstrap.servers": plain_bootstrap})
    key, value = probe(topic)
    producer.produce(
        topic, key=key, value=value, partition=0, on_delivery=lambda _e, m: found.append(m)
    )
    assert producer.flush(TIMEOUT_S) == 0 and found and found[0].error() is None
    return TopicPartition(topic, 0, int(found[0].offset() or 0))


def read_outcome(
    bootstrap: str, plain_bootstrap: str, security: KafkaSecurity, topic: str, how: Read
) -> int | None:
    """Read a fresh marker with a confluent-kafka consumer configured as the orchestrator's
    and the web pre-flight's are: None once it arrives, else the broker's refusal (of the
    topic; of the group when the consumer joins one)."""
    start = marker(plain_bootstrap, topic)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": how.group or "nnt-acl-probe",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **security.confluent_config(),
        }
    )

    # librdkafka waits silently for a partition of a topic it may not see: ask the metadata.
    seen = consumer.list_topics(topic, timeout=TIMEOUT_S).topics[topic].error
    if seen is not None and seen.code() == DENIED:
        consumer.close()
        return DENIED

    def assigned(c: Consumer, parts: list[TopicPartition]) -> None:
        c.assign([start if p.partition == 0 else TopicPartition(topic, p.partition, OFFSET_END)
                  for p in parts])  # fmt: skip

    if how.joins:
        consumer.subscribe([topic], on_assign=assigned)
    else:
        consumer.assign([TopicPartition(topic, 0, start.offset)])
    decisive = {DENIED, GROUP_DENIED} if how.joins else {DENIED}
    try:

        def outcome() -> tuple[int | None] | None:
            msg = consumer.poll(0.5)
            if msg is None:
                return None
            err = msg.error()
            if err is None:
                return (None,) if (msg.partition(), msg.offset()) == (0, start.offset) else None
            return (err.code(),) if err.code() in decisive else None

        return polling.until(outcome, TIMEOUT_S, f"an answer to reading {topic}")[0]
    finally:
        consumer.close()


async def bridge_read(
    bootstrap: str, plain_bootstrap: str, security: KafkaSecurity, topic: str
) -> int | None:
    """Read a fresh marker with a consumer configured as the web's live bridge (aiokafka, no
    group, from the latest offset): None once it arrives, else the broker's refusal."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="latest",
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(TIMEOUT_S * 1000),
        **security.aiokafka_kwargs(),
    )
    try:
        try:
            await asyncio.wait_for(consumer.start(), TIMEOUT_S)
        except TopicAuthorizationFailedError:
            return DENIED
        for part in consumer.assignment():
            await consumer.position(part)  # from here on, a new message is read
        start = marker(plain_bootstrap, topic)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            if any(
                (m.partition, m.offset) == (0, start.offset) for ms in batch.values() for m in ms
            ):
                return None
        raise AssertionError(f"the marker on {topic} never arrived")
    finally:
        await consumer.stop()


# ---- the matrix: each principal, every product topic -----------------------------------------


def test_it_applies_the_acls_once_and_only_as_a_super_user(
    acl_bootstrap: str, kafka_bootstrap: str
) -> None:
    every = kafkaacl.bindings()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    ours = {f"User:{p}" for p in COMPONENTS}

    def present() -> list[object]:
        from confluent_kafka.admin import AclBindingFilter

        filt = AclBindingFilter("ANY", None, "ANY", None, None, "ANY", "ANY")
        found = admin.describe_acls(filt, request_timeout=TIMEOUT_S).result()
        return sorted(str(b) for b in found if b.principal in ours)

    before = present()
    assert before == sorted(str(b) for b in every)
    # Again, as provisioning does on every `up`: nothing doubles.
    assert run_apply(acl_bootstrap, kafkaacl.ADMIN)[0] == 0
    assert present() == before
    # A component's principal may not change ACLs: one line, no traceback, exit status 2.
    done = subprocess.run(
        [sys.executable, "-m", "infra.kafkaacl", "apply", "--timeout", "20"],
        env={**login_env(WEB), "NNT_KAFKA_BOOTSTRAP": acl_bootstrap, "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("kafkaacl: this user may not create ACLs: run as a super user")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    # A wrong password is named as such.
    code, out, err = run_apply(acl_bootstrap, kafkaacl.ADMIN, 5, NNT_KAFKA_SASL_PASSWORD="wrong")
    assert (code, out) == (2, "")
    assert err.startswith(f"kafkaacl: Kafka at {acl_bootstrap} refused the login of "
                          "NNT_KAFKA_SASL_USERNAME=nnt-admin")  # fmt: skip


@pytest.mark.parametrize("principal", COMPONENTS)
def test_each_principal_produces_to_its_topics_and_is_refused_the_others(
    acl_bootstrap: str, principal: str
) -> None:
    outcomes = produce_outcomes(acl_bootstrap, login(principal))
    assert outcomes == {t: None if t in PRODUCES[principal] else DENIED for t in topics.ALL_TOPICS}


@pytest.mark.parametrize("principal", COMPONENTS)
def test_each_principal_reads_its_topics_and_is_refused_the_others(
    acl_bootstrap: str, kafka_bootstrap: str, principal: str
) -> None:
    security = login(principal)
    outcomes = {}
    for topic in topics.ALL_TOPICS:
        how = READS[principal].get(topic, Read(None, False))
        if principal == WEB and topic == topics.LIVE:
            outcomes[topic] = asyncio.run(
                bridge_read(acl_bootstrap, kafka_bootstrap, security, topic)
            )
        else:
            outcomes[topic] = read_outcome(acl_bootstrap, kafka_bootstrap, security, topic, how)
    assert outcomes == {t: None if t in READS[principal] else DENIED for t in topics.ALL_TOPICS}


def test_the_web_bridge_is_refused_a_topic_it_does_not_read(
    acl_bootstrap: str, kafka_bootstrap: str
) -> None:
    outcome = asyncio.run(bridge_read(acl_bootstrap, kafka_bootstrap, login(WEB), topics.EPOCHS))
    assert outcome == DENIED


@pytest.mark.parametrize(
    ("principal", "topic", "group"),
    [
        (ORCHESTRATOR, topics.COMMANDS, STREAM_GROUP),
        (ORCHESTRATOR, topics.COMMANDS, "another-orchestrator-group"),
        (STREAM, topics.EPOCHS, ORCH_GROUP),
        (WEB, topics.LIVE, STREAM_GROUP),
        (WEB, topics.STATUS, "nnt.web.preflight"),  # named, never joined: Describe only
    ],
)
def test_a_consumer_may_join_only_its_own_group(
    acl_bootstrap: str, kafka_bootstrap: str, principal: str, topic: str, group: str
) -> None:
    how = Read(group, joins=True)
    assert read_outcome(acl_bootstrap, kafka_bootstrap, login(principal), topic, how) == (
        GROUP_DENIED
    )


def test_a_principal_without_acls_sees_and_does_nothing(
    acl_bootstrap: str, kafka_bootstrap: str
) -> None:
    security = login(NO_ACL_USER)
    meta = AdminClient({"bootstrap.servers": acl_bootstrap, **security.confluent_config()})
    assert set(meta.list_topics(timeout=TIMEOUT_S).topics) == set()
    failures: list[int | None] = []
    producer = Producer(
        {
            "bootstrap.servers": acl_bootstrap,
            "message.timeout.ms": int(TIMEOUT_S * 1000),
            **security.confluent_config(),
        }
    )
    producer.produce(
        topics.COMMANDS, value=b"{}", on_delivery=lambda e, _m: failures.append(e and e.code())
    )
    assert producer.flush(TIMEOUT_S + 5) == 0
    assert failures == [DENIED]
    read = read_outcome(acl_bootstrap, kafka_bootstrap, security, topics.STATUS, Read(None, False))
    assert read == DENIED


def test_only_the_admin_provisions_topics(acl_bootstrap: str) -> None:
    assert kafka.ensure_topics(acl_bootstrap, login(kafkaacl.ADMIN)) == []
    # The web sees four product topics; creating the others is refused.
    with pytest.raises(InfraError, match="TOPIC_AUTHORIZATION_FAILED"):
        kafka.ensure_topics(acl_bootstrap, login(WEB))


# ---- the real components, each under its own principal --------------------------------------


def healthcheck() -> ModuleType:
    """infra/docker/healthcheck.py (a script the images copy, not a package) as a module."""
    spec = importlib.util.spec_from_file_location(
        "nnt_docker_healthcheck", ROOT / "infra" / "docker" / "healthcheck.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stream_worker_as_nnt_stream(
    acl_bootstrap: str, web_tables: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """`python -m stream_processors` logged in as nnt-stream through the SASL listener."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in login_env(STREAM).items():
            env.setenv(name, value)
        running = Worker(acl_bootstrap, web_tables, tmp_path_factory.mktemp("acl-stream"))
    running.wait_ready()
    yield running
    running.stop()


def test_a_stream_worker_as_nnt_stream_stores_what_a_trainer_as_nnt_trainer_publishes(
    stream_worker_as_nnt_stream: Worker,
    acl_bootstrap: str,
    kafka_bootstrap: str,
    web_tables: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = stream_worker_as_nnt_stream
    sid, forged = uuid.uuid4(), uuid.uuid4()
    rows(web_tables, "INSERT INTO nnt_simulation (id, owner_name, name) VALUES (%s, 'ana', "
         "'acl') RETURNING id", sid)  # fmt: skip
    for name, value in login_env(TRAINER).items():
        monkeypatch.setenv(name, value)  # the trainer reads them itself (schemas.kafkaauth)
    trainer = KafkaPublisher(acl_bootstrap, run_key=run_key(sid))
    send_event(trainer, topics.EPOCHS, sid, EpochEvent(simulation_id=sid, epoch=1,
                                                        total_epochs=1, metrics={"loss": 0.5}))  # fmt: skip
    send_event(trainer, topics.STATUS, sid, StatusEvent(simulation_id=sid, status="finished",
                                                         epoch=1))  # fmt: skip
    unsigned = KafkaPublisher(acl_bootstrap, run_key="")
    send_event(unsigned, topics.EPOCHS, forged, EpochEvent(simulation_id=forged, epoch=1,
                                                            total_epochs=1, metrics={"loss": 1}))  # fmt: skip
    assert trainer.flush() == 0 and unsigned.flush() == 0
    assert trainer.failed == 0 and unsigned.failed == 0

    # Read nnt.epochs and nnt.status, wrote rows, ...
    stored = "SELECT epoch, metric, value FROM nnt_epoch_metric WHERE simulation_id = %s"
    assert until(lambda: rows(web_tables, stored, sid), 60, worker) == [(1, "loss", 0.5)]
    statuses = "SELECT status FROM nnt_status_event WHERE simulation_id = %s"
    assert until(lambda: rows(web_tables, statuses, sid), 60, worker) == [("finished",)]
    # ... wrote nnt.live and nnt.deadletter (read here as a super user) ...
    live = Reader(kafka_bootstrap, topics.LIVE, f"acl-{sid}")
    letters = Reader(kafka_bootstrap, topics.DEAD_LETTER, f"acl-{forged}")
    try:
        assert until(lambda: live.poll(str(sid)), 60, worker)
        # nnt.deadletter is at-least-once: a partition read again after a stall (liveness)
        # dead-letters its refused events again (docs/stream-processing.md)
        found = until(lambda: letters.poll(str(forged)), 60, worker)
    finally:
        live.close()
        letters.close()
    assert found and all(json.loads(letter)["reason"] == "unsigned event" for letter in found)
    # ... and its health probe, with its own principal, finds it in its group.
    assert healthcheck().member_of(acl_bootstrap, login(STREAM), STREAM_GROUP) is None
    assert "Authorization" not in worker.text() and "authorization" not in worker.text()


def test_an_orchestrator_as_nnt_orchestrator_runs_an_experiment_its_trainer_publishes_as_nnt_trainer(
    stream_worker_as_nnt_stream: Worker,
    acl_bootstrap: str,
    kafka_bootstrap: str,
    web_tables: str,
    tmp_path: Path,
) -> None:
    from web.simulations.commands import producer_config

    tmp_path.chmod(0o755)
    host, group = "acl-host", f"{ORCH_GROUP}-acl-{uuid.uuid4().hex[:8]}"
    skip_history(kafka_bootstrap, group, host)  # earlier tests' commands stay theirs
    # The web's producer (its principal): the account records, then the signed `create`.
    web = Producer(producer_config(acl_bootstrap, TIMEOUT_S, login(WEB)))
    for name in USERS:
        web.produce(topics.ACCOUNTS, key=str(USERS[name]).encode(), value=dumps(record(name)))
    assert web.flush(TIMEOUT_S) == 0
    orch = Orch(
        tmp_path, acl_bootstrap, host, group, NNT_PREFLIGHT="false", **login_env(ORCHESTRATOR),
        NNT_TRAINER_KAFKA_SASL_USERNAME=TRAINER, NNT_TRAINER_KAFKA_SASL_PASSWORD=PASSWORDS[TRAINER],
    ).start()  # fmt: skip
    tap = Tap(kafka_bootstrap, topics.STATUS)
    try:
        experiment = demo_experiment(tmp_path, ORCH_EPOCHS, batch_size=64)
        create = sign_as(CreateCommand(experiment_id=uuid.uuid4(), issued_by="ana",
                                       experiment=experiment), "ana")  # fmt: skip
        web.produce(topics.COMMANDS, key=command_key(create), value=dumps(create))
        assert web.flush(TIMEOUT_S) == 0
        sid = simulation_id(create.experiment_id, 0)
        queued = orch_until(lambda: tap.status(sid, "queued", "orchestrator"), 60, "queued", orch)
        assert queued["owner"] == "ana"
        ended = orch_until(lambda: tap.status(sid, "finished", "trainer")
                           or tap.status(sid, "failed"), 240, "the run's end", orch)  # fmt: skip
        assert ended["status"] == "finished", ended
        # The orchestrator's health probe, with its principal, finds it in its group.
        probe = healthcheck().member_of(acl_bootstrap, login(ORCHESTRATOR), group)
        assert probe is None
    finally:
        tap.close()
        orch.kill()
    # Every epoch reached nnt.epochs, so the trainer wrote there: as nnt-trainer, since the
    # orchestrator's principal may not (the matrix above). nnt-stream stored them.
    epochs = "SELECT DISTINCT epoch FROM nnt_epoch_metric WHERE simulation_id = %s ORDER BY 1"
    expected = [(n,) for n in range(1, ORCH_EPOCHS + 1)]
    assert until(lambda: rows(web_tables, epochs, sid) == expected or None, 60,
                 stream_worker_as_nnt_stream)  # fmt: skip
    statuses = {s for (s,) in rows(web_tables, "SELECT status FROM nnt_status_event "
                                               "WHERE simulation_id = %s", sid)}  # fmt: skip
    assert {"queued", "running", "finished"} <= statuses
    assert "authorization" not in orch.log_tail().lower()
