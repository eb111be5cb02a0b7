"""NNT_KAFKA_* security settings: what each client library is given, and the start-up errors."""

from __future__ import annotations

import datetime
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from schemas import kafkaauth
from schemas.kafkaauth import KafkaSecurityError


@pytest.fixture()
def pem(tmp_path: Path) -> dict[str, str]:
    """A self-signed certificate (also its own CA) and its unencrypted key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nnt-client")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {"cert": str(tmp_path / "cert.pem"), "key": str(tmp_path / "key.pem")}


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set NNT_KAFKA_<NAME> variables (and no others of them)."""
    for name in kafkaauth.KafkaSecurity.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"NNT_KAFKA_{name.upper()}", value)

    return set_env


def test_it_adds_nothing_for_plaintext(env: Callable[..., None]) -> None:
    security = kafkaauth.load()
    assert security.confluent_config() == {}
    assert security.aiokafka_kwargs() == {}
    assert security.faust_credentials() is None


def test_it_maps_sasl_ssl_with_scram_to_every_client_library(
    env: Callable[..., None], pem: dict[str, str]
) -> None:
    env(
        security_protocol="sasl_ssl",
        sasl_mechanism="scram-sha-512",
        sasl_username="nnt",
        sasl_password="s3cret",
        ssl_cafile=pem["cert"],
    )
    security = kafkaauth.load()
    assert security.confluent_config() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "nnt",
        "sasl.password": "s3cret",
        "ssl.ca.location": pem["cert"],
    }
    kwargs = security.aiokafka_kwargs()
    assert isinstance(kwargs.pop("ssl_context"), ssl.SSLContext)
    assert kwargs == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "nnt",
        "sasl_plain_password": "s3cret",
    }
    assert faust_auth(security.faust_credentials()) == {**kwargs, "ssl_context": "SSLContext"}


def faust_auth(credentials: Any) -> dict[str, Any]:
    """What Faust hands aiokafka for these broker_credentials (the context by its type)."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    auth = dict(credentials_to_aiokafka_auth(credentials))
    if auth.get("ssl_context") is not None:
        auth["ssl_context"] = type(auth["ssl_context"]).__name__
    return auth


def test_it_maps_sasl_plaintext_without_a_tls_context(env: Callable[..., None]) -> None:
    env(security_protocol="SASL_PLAINTEXT", sasl_username="nnt", sasl_password="pw")
    security = kafkaauth.load()
    assert security.confluent_config() == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": "nnt",
        "sasl.password": "pw",
    }
    assert faust_auth(security.faust_credentials()) == {
        **security.aiokafka_kwargs(),
        "ssl_context": None,
    }


def test_it_maps_mutual_tls(env: Callable[..., None], pem: dict[str, str]) -> None:
    env(
        security_protocol="SSL",
        ssl_cafile=pem["cert"],
        ssl_certfile=pem["cert"],
        ssl_keyfile=pem["key"],
    )
    security = kafkaauth.load()
    assert security.confluent_config() == {
        "security.protocol": "SSL",
        "ssl.ca.location": pem["cert"],
        "ssl.certificate.location": pem["cert"],
        "ssl.key.location": pem["key"],
    }
    assert set(security.aiokafka_kwargs()) == {"security_protocol", "ssl_context"}
    assert faust_auth(security.faust_credentials()) == {
        "security_protocol": "SSL",
        "ssl_context": "SSLContext",
    }


def test_it_gives_a_child_process_the_same_settings(
    env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    env(security_protocol="SASL_PLAINTEXT", sasl_username="nnt", sasl_password="pw")
    child = kafkaauth.load().environment()
    assert child["NNT_KAFKA_SASL_PASSWORD"] == "pw"
    env(security_protocol="PLAINTEXT", sasl_username="", sasl_password="")
    for name, value in child.items():
        monkeypatch.setenv(name, value)
    assert kafkaauth.load().confluent_config()["sasl.password"] == "pw"


def test_it_never_shows_the_password(
    env: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    env(security_protocol="SASL_PLAINTEXT", sasl_username="nnt", sasl_password="s3cret")
    security = kafkaauth.load()
    logging.getLogger("test").warning("settings %s %r", security, security.faust_credentials())
    assert "s3cret" not in repr(security) + str(security) + caplog.text


@pytest.mark.parametrize(
    ("values", "variable", "fix"),
    [
        ({"security_protocol": "SASL"}, "NNT_KAFKA_SECURITY_PROTOCOL", "'SASL_SSL'"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"},
            "NNT_KAFKA_SASL_MECHANISM",
            "'SCRAM-SHA-512'",
        ),
        (
            {"security_protocol": "SASL_SSL"},
            "NNT_KAFKA_SASL_USERNAME",
            "required with NNT_KAFKA_SECURITY_PROTOCOL=SASL_SSL: set NNT_KAFKA_SASL_USERNAME "
            "and NNT_KAFKA_SASL_PASSWORD",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_username": "nnt"},
            "NNT_KAFKA_SASL_PASSWORD",
            "required with NNT_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
        ),
        (
            {"sasl_username": "nnt", "sasl_password": "pw"},
            "NNT_KAFKA_SASL_USERNAME",
            "set NNT_KAFKA_SECURITY_PROTOCOL to SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            {"security_protocol": "SSL", "ssl_cafile": "/nowhere/ca.pem"},
            "NNT_KAFKA_SSL_CAFILE",
            "no file at /nowhere/ca.pem: give the path of the PEM file as this process sees it "
            "(in a container, mount it there)",
        ),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_username": "nnt",
                "sasl_password": "pw",
                "ssl_cafile": "{cert}",
            },
            "NNT_KAFKA_SSL_CAFILE",
            "set NNT_KAFKA_SECURITY_PROTOCOL to SSL or SASL_SSL",
        ),
        (
            {"security_protocol": "SSL", "ssl_cafile": "{key}"},
            "NNT_KAFKA_SSL_CAFILE",
            "holds no PEM certificate",
        ),
        (
            {"security_protocol": "SSL", "ssl_certfile": "{cert}"},
            "NNT_KAFKA_SSL_KEYFILE",
            "set both, or neither",
        ),
        (
            {"security_protocol": "SSL", "ssl_certfile": "{cert}", "ssl_keyfile": "{cert}"},
            "NNT_KAFKA_SSL_KEYFILE",
            "give the client certificate and the key it was issued for",
        ),
    ],
)
def test_it_names_the_variable_and_the_fix(
    env: Callable[..., None],
    pem: dict[str, str],
    values: dict[str, str],
    variable: str,
    fix: str,
) -> None:
    env(**{name: value.format(**pem) for name, value in values.items()})
    with pytest.raises(KafkaSecurityError) as caught:
        kafkaauth.load()
    assert str(caught.value).startswith(f"{variable}: ")
    assert fix in str(caught.value)


def _component_loads() -> list[tuple[str, Callable[[], object], type[Exception]]]:
    from infra.settings import InfraError
    from infra.settings import load as infra_load
    from orchestrator.settings import OrchestratorError
    from orchestrator.settings import load as orchestrator_load
    from stream_processors.errors import ConfigError as StreamConfigError
    from stream_processors.settings import load as stream_load
    from web.config import ConfigError as WebConfigError
    from web.config import load as web_load

    return [
        ("infra", infra_load, InfraError),
        ("orchestrator", orchestrator_load, OrchestratorError),
        ("stream", stream_load, StreamConfigError),
        ("web", web_load, WebConfigError),
    ]


@pytest.mark.parametrize("component", ["infra", "orchestrator", "stream", "web"])
def test_every_component_refuses_to_start_naming_the_variable(
    env: Callable[..., None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, component: str
) -> None:
    monkeypatch.setenv("NNT_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgresql://nnt:nnt@127.0.0.1:9/nnt")
    env(security_protocol="SASL_SSL", sasl_username="nnt")
    [(_, load, error)] = [c for c in _component_loads() if c[0] == component]
    with pytest.raises(error, match="^NNT_KAFKA_SASL_PASSWORD: .*required with"):
        load()
