"""Which Kafka principal may do what: the one table of the production ACLs, and its appliers.

Every component logs in with its own SASL user (docs/security.md, "Kafka in production"),
and a broker with an authorizer and `allow.everyone.if.no.acl.found=false` lets each do
only what this table grants. The same table is applied by `python -m infra.kafkaacl apply`
(as a super user such as `nnt-admin`), rendered as the `kafka-acls.sh` script of the docs by
`python -m infra.kafkaacl print`, and applied to the tests' broker, whose clients then prove
on real requests that each component can do its work and nothing more
(tests/integration/test_kafka_acls.py). A grant added here reaches all three at once.

It imports only `schemas` and confluent-kafka: it runs in the web image, where provisioning
runs, which holds neither the orchestrator nor the stream processors; their names below are
checked against theirs by tests/unit/infra/test_kafkaacl.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from schemas import topics

if TYPE_CHECKING:
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AclBinding, AdminClient

    from infra.settings import StackSettings

Resource = Literal["topic", "group"]
Pattern = Literal["literal", "prefixed"]
# Operations as kafka-acls.sh spells them. Since Kafka 3.0 an idempotent producer needs only
# Write on a topic (KIP-679): no IdempotentWrite on the cluster, and no transactional ids
# (no component uses transactions).
Operation = Literal["Read", "Write", "Create", "Describe"]

# The product's group names (schemas.topics spells them for every component).
ORCHESTRATOR_GROUP = topics.ORCHESTRATOR_GROUP  # NNT_ORCHESTRATOR_GROUP's default
STREAM_GROUP = topics.STREAM_GROUP  # the Faust app id (stream_processors/app.py)
WEB_PREFLIGHT_GROUP = topics.WEB_PREFLIGHT_GROUP  # web/simulations/preflight.py: never joins
ADMIN = "nnt-admin"
ADMIN_PROPERTIES = "admin.properties"
EXAMPLE_BOOTSTRAP = "kafka.example.org:9092"


@dataclass(frozen=True)
class Principal:
    """One SASL user: who logs in as it, and where its credentials are set."""

    name: str
    used_by: str
    notes: str = ""


@dataclass(frozen=True)
class Grant:
    """Operations one principal may do on one topic or consumer group (or every name that
    starts with `name`, when `pattern` is prefixed)."""

    principal: str
    resource: Resource
    name: str
    operations: tuple[Operation, ...]
    pattern: Pattern = "literal"


@dataclass(frozen=True)
class Names:
    """The deployment's group names: the product defaults unless NNT_ORCHESTRATOR_GROUP was
    changed (every orchestrator group starts with it: shared, per host, epochs, accounts)."""

    orchestrator_group: str = ORCHESTRATOR_GROUP
    stream_group: str = STREAM_GROUP
    web_preflight_group: str = WEB_PREFLIGHT_GROUP

    @property
    def stream_topics(self) -> str:
        """Prefix of the stream workers' own topics: Faust names its table changelogs
        `<app id>-<table>-changelog`, and the tag points topic is `schemas.topics.TAG_POINTS`."""
        return f"{self.stream_group}-"


PRINCIPALS: tuple[Principal, ...] = (
    Principal(
        "nnt-web",
        "the web (`web/simulations/commands.py`, `web/live/notify.py`, `web/live/bridge.py`, "
        "`web/accounts/records.py`, `web/simulations/preflight.py`)",
        "the `nntracker` CLI talks to the REST API, not to Kafka: it needs no principal",
    ),
    Principal(
        "nnt-operator",
        "people and scripts sending commands with `kcat` (docs/examples/kcat-command.sh)",
        "every command is checked by the orchestrator (signature, account, quota)",
    ),
    Principal(
        "nnt-orchestrator",
        "every orchestrator (`orchestrator/consumer.py`, `orchestrator/publisher.py`) and "
        "its health probe",
        "its groups all start with `NNT_ORCHESTRATOR_GROUP`",
    ),
    Principal(
        "nnt-trainer",
        "every run, through `NNT_TRAINER_KAFKA_SASL_USERNAME` / `…_PASSWORD` of the "
        "orchestrator (`trainer/publisher.py`)",
        "shared by every run: a run's events are told apart by their signature",
    ),
    Principal(
        "nnt-stream",
        "every stream worker (`stream_processors/app.py`) and its health probe",
        "creates its own topics (table changelogs, tag points) at start",
    ),
    Principal(
        ADMIN,
        "provisioning (`infra/kafka.py::ensure_topics`) and `python -m infra.kafkaacl apply`",
        "a super user (`super.users`): no ACLs",
    ),
)

R: tuple[Operation, ...] = ("Read", "Describe")
W: tuple[Operation, ...] = ("Write", "Describe")
RW: tuple[Operation, ...] = ("Read", "Write", "Describe")


def grants(names: Names | None = None) -> tuple[Grant, ...]:
    """The ACL table: what each component does with Kafka, read from its code.

    Describe goes with every topic a client uses (metadata, offsets); Read on a group where
    a client consumes with one (Read covers the health probes' DescribeGroups too); Describe
    on the web's pre-flight group, which it names but never joins (librdkafka looks up its
    coordinator, and reports every refusal on the consumer).
    """
    n = names or Names()
    web, operator, orch, trainer, stream = (
        "nnt-web",
        "nnt-operator",
        "nnt-orchestrator",
        "nnt-trainer",
        "nnt-stream",
    )
    return (
        # web: commands, list-row updates and the live bridge, account records for the
        # orchestrators, and the pre-flight answers it waits for (assigned partitions).
        Grant(web, "topic", topics.COMMANDS, W),
        Grant(web, "topic", topics.LIVE, RW),
        Grant(web, "topic", topics.ACCOUNTS, W),
        Grant(web, "topic", topics.STATUS, R),
        Grant(web, "group", n.web_preflight_group, ("Describe",)),
        # operators (kcat): commands only.
        Grant(operator, "topic", topics.COMMANDS, W),
        # orchestrator: consumes commands (shared and per-host groups), this host's epochs
        # and every account record; answers on nnt.status, samples nnt.resources, and puts
        # its own `start` commands on nnt.commands.
        Grant(orch, "topic", topics.COMMANDS, RW),
        Grant(orch, "topic", topics.EPOCHS, R),
        Grant(orch, "topic", topics.ACCOUNTS, R),
        Grant(orch, "topic", topics.STATUS, W),
        Grant(orch, "topic", topics.RESOURCES, W),
        Grant(orch, "group", n.orchestrator_group, ("Read",), "prefixed"),
        # trainers: their own events only.
        Grant(trainer, "topic", topics.EPOCHS, W),
        Grant(trainer, "topic", topics.TENSORS, W),
        Grant(trainer, "topic", topics.STATUS, W),
        # stream workers: the events they store, what they send on, their own topics.
        Grant(stream, "topic", topics.EPOCHS, R),
        Grant(stream, "topic", topics.TENSORS, R),
        Grant(stream, "topic", topics.STATUS, R),
        Grant(stream, "topic", topics.RESOURCES, R),
        Grant(stream, "topic", topics.LIVE, W),
        Grant(stream, "topic", topics.DEAD_LETTER, W),
        Grant(stream, "topic", n.stream_topics, ("Create", *RW), "prefixed"),
        Grant(stream, "group", n.stream_group, ("Read",)),
    )


def bindings(names: Names | None = None) -> list[AclBinding]:
    """The table as confluent-kafka ALLOW bindings (any host), one per operation."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    operation = {
        "Read": AclOperation.READ,
        "Write": AclOperation.WRITE,
        "Create": AclOperation.CREATE,
        "Describe": AclOperation.DESCRIBE,
    }
    resource = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
    pattern = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}
    return [
        AclBinding(
            resource[g.resource],
            g.name,
            pattern[g.pattern],
            f"User:{g.principal}",
            "*",
            operation[op],
            AclPermissionType.ALLOW,
        )
        for g in grants(names)
        for op in g.operations
    ]


class AclError(RuntimeError):
    """The ACLs could not be applied; the message says why and what to do."""


def apply(admin: AdminClient, names: Names | None = None, timeout: float = 30.0) -> int:
    """Create every binding of the table (the broker keeps one copy of an ACL it already has,
    so this is safe to run on every provisioning); returns how many the table holds.

    ACLs the table no longer holds are left in place: remove them with `kafka-acls.sh --remove`.
    """
    from confluent_kafka import KafkaError, KafkaException

    wanted = bindings(names)
    futures = admin.create_acls(wanted, request_timeout=timeout)
    for binding, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            err = exc.args[0]
            code = err.code() if isinstance(err, KafkaError) else None
            if code == KafkaError.SECURITY_DISABLED:
                raise AclError(
                    "the broker has no authorizer: set authorizer.class.name="
                    "org.apache.kafka.metadata.authorizer.StandardAuthorizer and "
                    "allow.everyone.if.no.acl.found=false (docs/security.md)"
                ) from None
            if code == KafkaError.CLUSTER_AUTHORIZATION_FAILED:
                raise AclError(
                    "this user may not create ACLs: run as a super user of the broker "
                    f"(`super.users`, such as {ADMIN})"
                ) from None
            raise AclError(f"could not create the ACL {binding}: {err}") from None
    _wait_in_place(admin, wanted, timeout)
    return len(wanted)


def _wait_in_place(admin: AdminClient, wanted: list[AclBinding], timeout: float) -> None:
    """Until the broker answers with every wanted ACL: a controller acknowledges a new ACL
    before the brokers apply it, and a client that came just after was refused."""
    import time

    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    anything: Any = None  # a filter's None matches every name, principal and host
    every = AclBindingFilter(
        ResourceType.ANY,
        anything,
        ResourcePatternType.ANY,
        anything,
        anything,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    deadline = time.monotonic() + timeout
    while True:
        present = set(admin.describe_acls(every, request_timeout=timeout).result())
        missing = [b for b in wanted if b not in present]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AclError(
                f"the broker does not show {len(missing)} of the ACLs it accepted "
                f"(first: {missing[0]}) after {timeout:g} s"
            )
        time.sleep(0.2)


def _operation_flags(operations: Sequence[str]) -> str:
    return " ".join(f"--operation {op}" for op in operations)


def render_script(names: Names | None = None) -> str:
    """The table as the `kafka-acls.sh` commands of docs/security.md, one line per grant."""
    lines = [
        f"# Rendered by `python -m infra.kafkaacl print` from infra/kafkaacl.py; run as {ADMIN}",
        f"# ({ADMIN_PROPERTIES}: its client settings). `python -m infra.kafkaacl apply` does",
        "# the same with the NNT_KAFKA_* settings.",
        f"BOOTSTRAP=${{BOOTSTRAP:-{EXAMPLE_BOOTSTRAP}}}",
        'acl() { kafka-acls.sh --bootstrap-server "$BOOTSTRAP" '
        f'--command-config {ADMIN_PROPERTIES} --add "$@"; }}',
    ]
    table = grants(names)
    for principal in PRINCIPALS:
        mine = [g for g in table if g.principal == principal.name]
        if not mine:
            continue
        lines += ["", f"# {principal.name}"]
        for g in mine:
            where = f"--{g.resource} {g.name}"
            if g.pattern == "prefixed":
                where += " --resource-pattern-type prefixed"
            lines.append(
                f"acl --allow-principal User:{g.principal} {_operation_flags(g.operations)} "
                + where
            )
    return "\n".join(lines) + "\n"


def _shown(grant: Grant) -> str:
    return f"`{grant.name}*`" if grant.pattern == "prefixed" else f"`{grant.name}`"


def render_principals(names: Names | None = None) -> str:
    """The principals table of docs/security.md, from the same grants as the script."""
    table = grants(names)
    rows = [
        "| principal | used by | writes | reads | consumer groups | creates | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in PRINCIPALS:
        mine = [g for g in table if g.principal == p.name]

        def topics_with(op: Operation, mine: list[Grant] = mine) -> str:
            found = [_shown(g) for g in mine if g.resource == "topic" and op in g.operations]
            return ", ".join(found) or "—"

        groups = [
            _shown(g) + ("" if "Read" in g.operations else " (Describe only: never joined)")
            for g in mine
            if g.resource == "group"
        ]
        rows.append(
            f"| `{p.name}` | {p.used_by} | {topics_with('Write')} | {topics_with('Read')} | "
            f"{', '.join(groups) or '—'} | {topics_with('Create')} | {p.notes} |"
        )
    return "\n".join(rows) + "\n"


def admin_client(
    settings: StackSettings, timeout: float, errors: list[KafkaError] | None = None
) -> AdminClient:
    """An AdminClient with this process's NNT_KAFKA_* settings, silent: errors are raised,
    and the client's own (a refused login) collected in `errors`."""
    from confluent_kafka.admin import AdminClient

    seen = errors if errors is not None else []
    config: dict[str, Any] = {
        "bootstrap.servers": settings.nnt_kafka_bootstrap,
        "socket.connection.setup.timeout.ms": int(timeout * 1000),
        "log_level": 0,
        "error_cb": seen.append,
        **settings.confluent_config(),
    }
    return AdminClient(config)


def _apply_from_environment(names: Names, timeout: float) -> str:
    """Apply with the NNT_KAFKA_* settings; the line to print, or AclError."""
    from confluent_kafka import KafkaError, KafkaException
    from pydantic import ValidationError

    from infra.settings import StackSettings
    from schemas.common import variable_error

    try:
        settings = StackSettings()
    except ValidationError as exc:
        name, why = variable_error(exc)
        raise AclError(f"{name}: {why}") from None
    bootstrap = settings.nnt_kafka_bootstrap
    seen: list[KafkaError] = []
    try:
        admin = admin_client(settings, timeout, seen)
    except KafkaException as exc:
        raise AclError(f"the Kafka client refused the NNT_KAFKA_* settings: {exc}") from None
    try:
        # A metadata request first: an unreachable broker or a refused login is named here,
        # not as a timeout of the first ACL.
        admin.list_topics(timeout=timeout)
        count = apply(admin, names, timeout)
    except KafkaException as exc:
        admin.poll(0)  # serves error_cb: a refused login is reported there, not in `exc`
        err = exc.args[0]
        codes = {e.code() for e in (err, *seen) if isinstance(e, KafkaError)}
        if KafkaError._AUTHENTICATION in codes:
            raise AclError(
                f"Kafka at {bootstrap} refused the login of NNT_KAFKA_SASL_USERNAME="
                f"{settings.nnt_kafka_sasl_username}: check the user and NNT_KAFKA_SASL_PASSWORD"
            ) from None
        reason = err.str() if isinstance(err, KafkaError) else str(err)
        raise AclError(
            f"Kafka at {bootstrap} did not answer within {timeout:g} s ({reason}): check "
            "NNT_KAFKA_BOOTSTRAP, NNT_KAFKA_SECURITY_PROTOCOL and that the broker is up"
        ) from None
    users = ", ".join(sorted({g.principal for g in grants(names)}))
    return f"kafkaacl: {count} ACLs in place on {bootstrap} for {users}"


def main(argv: Sequence[str] | None = None) -> int:
    """`print` the kafka-acls.sh script or `apply` the ACLs; 0 done, 2 bad settings or no
    broker (one line on stderr naming why)."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.kafkaacl",
        description="The ACLs of NN Tracker's Kafka principals (docs/security.md).",
    )
    parser.add_argument("action", choices=("print", "apply"))
    parser.add_argument(
        "--orchestrator-group",
        default=ORCHESTRATOR_GROUP,
        help="the orchestrators' NNT_ORCHESTRATOR_GROUP (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the broker"
    )
    args = parser.parse_args(argv)
    names = Names(orchestrator_group=args.orchestrator_group)
    if args.action == "print":
        sys.stdout.write(render_script(names))
        return 0
    try:
        print(_apply_from_environment(names, args.timeout))
    except AclError as exc:
        print(f"kafkaacl: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
