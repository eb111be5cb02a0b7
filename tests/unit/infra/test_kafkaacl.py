"""infra/kafkaacl.py: the one ACL table, its names, its renderings and its command line.

The broker's answers to each principal are proved in tests/integration/test_kafka_acls.py;
here: the names the table uses are the components' own, docs/security.md shows exactly the
rendered table and script, and `python -m infra.kafkaacl` fails with one line.
"""

from __future__ import annotations

import importlib
import re
import socket
import subprocess
import sys
from pathlib import Path

import faust
import pytest
import yaml
from confluent_kafka.admin import AclOperation, AclPermissionType, ResourcePatternType

from infra import kafka, kafkaacl
from orchestrator.settings import OrchestratorSettings
from schemas import topics

ROOT = Path(__file__).resolve().parents[3]
SECURITY_DOC = ROOT / "docs" / "security.md"
SECTION = "## Kafka in production: SASL and ACLs"


def section() -> str:
    """The doc's Kafka-in-production section, up to the next `## ` heading."""
    text = SECURITY_DOC.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def test_the_security_doc_shows_the_rendered_acl_script() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", section(), re.S)
    rendered = kafkaacl.render_script()
    assert rendered in blocks, "paste `python -m infra.kafkaacl print` into docs/security.md"


def test_the_security_doc_shows_the_rendered_principals_table() -> None:
    assert kafkaacl.render_principals() in section(), (
        "paste infra.kafkaacl.render_principals() into docs/security.md"
    )


def test_print_writes_the_rendered_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "infra.kafkaacl", "print"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == kafkaacl.render_script()


def test_its_group_names_are_the_components_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    default = OrchestratorSettings.model_fields["nnt_orchestrator_group"].default
    assert default == kafkaacl.ORCHESTRATOR_GROUP
    preflight = (ROOT / "web" / "simulations" / "preflight.py").read_text()
    assert '"group.id": topics.WEB_PREFLIGHT_GROUP' in preflight
    assert kafkaacl.WEB_PREFLIGHT_GROUP == topics.WEB_PREFLIGHT_GROUP
    monkeypatch.setenv("DATABASE_URL", "postgresql://nnt:nnt@127.0.0.1:9/nnt")
    monkeypatch.setenv("NNT_HOME", str(tmp_path))
    app_module = importlib.import_module("stream_processors.app")
    assert app_module.app.conf.id == kafkaacl.STREAM_GROUP  # Faust's group is its app id


def test_every_topic_of_the_stream_app_is_a_product_topic_or_under_its_prefix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nnt:nnt@127.0.0.1:9/nnt")
    monkeypatch.setenv("NNT_HOME", str(tmp_path))
    app_module = importlib.import_module("stream_processors.app")
    declared = [
        v.get_topic_name() for v in vars(app_module).values() if isinstance(v, faust.TopicT)
    ]
    changelogs = [t.changelog_topic.get_topic_name() for t in app_module.app.tables.values()]
    prefix = kafkaacl.Names().stream_topics
    own = [name for name in declared + changelogs if name not in topics.ALL_TOPICS]
    assert len(changelogs) == 2 and app_module.TAG_POINTS in own
    assert [name for name in own if not name.startswith(prefix)] == []


def test_it_names_only_product_topics_and_its_own_groups() -> None:
    for grant in kafkaacl.grants():
        if grant.resource == "topic" and grant.pattern == "literal":
            assert grant.name in topics.ALL_TOPICS, grant
    names = kafkaacl.Names(orchestrator_group="acme-orch")
    [group] = [g for g in kafkaacl.grants(names) if g.principal == "nnt-orchestrator"
               and g.resource == "group"]  # fmt: skip
    assert (group.name, group.pattern) == ("acme-orch", "prefixed")


def test_trainers_and_operators_only_write_their_topics() -> None:
    def held(principal: str) -> set[tuple[str, tuple[str, ...]]]:
        return {(g.name, g.operations) for g in kafkaacl.grants() if g.principal == principal}

    write = ("Write", "Describe")
    assert held("nnt-trainer") == {
        (t, write) for t in (topics.EPOCHS, topics.TENSORS, topics.STATUS)
    }
    assert held("nnt-operator") == {(topics.COMMANDS, write)}
    assert held(kafkaacl.ADMIN) == set()  # a super user


def test_it_builds_one_allow_binding_per_operation() -> None:
    bindings = kafkaacl.bindings()
    assert len(bindings) == sum(len(g.operations) for g in kafkaacl.grants())
    assert len(set(bindings)) == len(bindings)
    assert {b.permission_type for b in bindings} == {AclPermissionType.ALLOW}
    assert {b.host for b in bindings} == {"*"}
    assert {b.principal for b in bindings} == {
        f"User:{p.name}" for p in kafkaacl.PRINCIPALS if p.name != kafkaacl.ADMIN
    }
    assert AclOperation.IDEMPOTENT_WRITE not in {b.operation for b in bindings}  # Kafka >= 3.0
    prefixed = {b.name for b in bindings if b.resource_pattern_type == ResourcePatternType.PREFIXED}
    assert prefixed == {kafkaacl.ORCHESTRATOR_GROUP, f"{kafkaacl.STREAM_GROUP}-"}


def test_the_test_broker_authorizes_only_with_super_users() -> None:
    plain = kafka.SaslListener(9, {"u": "p"}).properties()
    assert "authorizer.class.name" not in plain
    secured = kafka.SaslListener(9, {"u": "p"}, ("nnt-admin",)).properties()
    assert secured["authorizer.class.name"] == kafka.AUTHORIZER
    assert secured["allow.everyone.if.no.acl.found"] == "false"
    # The PLAINTEXT and CONTROLLER listeners' principal: the broker itself and the tests.
    assert secured["super.users"] == "User:ANONYMOUS;User:nnt-admin"


def apply(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m infra.kafkaacl apply` with only these variables."""
    return subprocess.run(
        [sys.executable, "-m", "infra.kafkaacl", "apply", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == "" and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    return line


def test_apply_names_a_bad_setting_in_one_line() -> None:
    line = one_line(apply({"NNT_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}))
    assert line.startswith("kafkaacl: NNT_KAFKA_SASL_USERNAME: required with ")


def test_apply_names_an_unreachable_broker_in_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        done = apply({"NNT_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"}, "--timeout", "2")
    line = one_line(done)
    assert line.startswith(f"kafkaacl: Kafka at 127.0.0.1:{port} did not answer within 2 s")
    assert "NNT_KAFKA_BOOTSTRAP" in line


OVERLAY = ROOT / "infra" / "docker" / "compose.sasl.yml"
# The services that talk to Kafka, and the principal each logs in as in the overlay.
SERVICE_PRINCIPALS = {
    "provision": kafkaacl.ADMIN,
    "web": "nnt-web",
    "stream": "nnt-stream",
    "orchestrator": "nnt-orchestrator",
}


def password_variable(value: str) -> str:
    """The .env variable a `${NNT_..._PASSWORD:?...}` value comes from."""
    [name] = re.findall(r"\$\{(NNT_KAFKA_\w+_PASSWORD):\?", value)
    return name


def test_the_sasl_overlay_gives_every_principal_its_own_login_and_applies_the_acls() -> None:
    overlay = yaml.safe_load(OVERLAY.read_text())["services"]
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert set(overlay) <= set(base)
    logins = {
        name: service["environment"]
        for name, service in overlay.items()
        if "NNT_KAFKA_SASL_USERNAME" in service.get("environment", {})
    }
    assert {name: env["NNT_KAFKA_SASL_USERNAME"] for name, env in logins.items()} == (
        SERVICE_PRINCIPALS
    )
    assert {env["NNT_KAFKA_SECURITY_PROTOCOL"] for env in logins.values()} == {"SASL_PLAINTEXT"}
    orchestrator = overlay["orchestrator"]["environment"]
    assert orchestrator["NNT_TRAINER_KAFKA_SASL_USERNAME"] == "nnt-trainer"
    # The broker knows every principal of the table, each with its own password variable,
    # and the services use those same variables.
    broker = overlay["kafka"]["environment"]
    jaas = broker["KAFKA_LISTENER_NAME_INTERNAL_PLAIN_SASL_JAAS_CONFIG"]
    assert broker["KAFKA_LISTENER_NAME_EXTERNAL_PLAIN_SASL_JAAS_CONFIG"] == jaas
    users = dict(re.findall(r'user_([\w-]+)="([^"]*)"', jaas))
    assert set(users) == {p.name for p in kafkaacl.PRINCIPALS}
    variables = {user: password_variable(value) for user, value in users.items()}
    assert len(set(variables.values())) == len(variables)
    for name, env in logins.items():
        assert (
            password_variable(env["NNT_KAFKA_SASL_PASSWORD"]) == variables[SERVICE_PRINCIPALS[name]]
        )
    trainer = password_variable(orchestrator["NNT_TRAINER_KAFKA_SASL_PASSWORD"])
    assert trainer == variables["nnt-trainer"]
    # Authorized as the tests' broker is; ANONYMOUS only on loopback listeners.
    assert broker["KAFKA_AUTHORIZER_CLASS_NAME"] == kafka.AUTHORIZER
    assert broker["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert broker["KAFKA_SUPER_USERS"] == f"User:{kafkaacl.ADMIN};User:ANONYMOUS"
    protocols = dict(
        p.split(":") for p in broker["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    listeners = dict(
        (spec.split("://")[0], spec.split("://")[1])
        for spec in broker["KAFKA_LISTENERS"].split(",")
    )
    for name, protocol in protocols.items():
        assert protocol == "SASL_PLAINTEXT" or listeners[name].startswith("127.0.0.1:"), name
    assert overlay["provision"]["command"][-1].endswith("&& python -m infra.kafkaacl apply")
