"""How every Kafka client of NN Tracker authenticates: SASL and TLS from NNT_KAFKA_* variables.

One settings class, mapped to the options of the three client libraries the product uses
(confluent-kafka, aiokafka, Faust). It lives in `schemas` because every component, the
trainer included, may import only `schemas`. The components that read the rest of their
environment without a prefix inherit it, so their own `load()` names a bad variable; the
trainer reads it alone. aiokafka and Faust are imported only where their objects are built:
the trainer image has neither.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.common import variable_error

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SASL = ("SASL_PLAINTEXT", "SASL_SSL")
TLS = ("SSL", "SASL_SSL")
PROTOCOL = "NNT_KAFKA_SECURITY_PROTOCOL"


class KafkaSecurityError(ValueError):
    """A bad NNT_KAFKA_* security variable; the message names it and the fix."""


class KafkaSecurity(BaseSettings):
    """The broker's security protocol and this client's credentials (docs/security.md)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    nnt_kafka_security_protocol: Protocol = Field(
        default="PLAINTEXT",
        description="PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL: how clients talk to the "
        "brokers (SASL_SSL for a broker outside a private network)",
    )
    nnt_kafka_sasl_mechanism: Mechanism = Field(
        default="PLAIN", description="PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 (SASL protocols)"
    )
    nnt_kafka_sasl_username: str | None = Field(
        default=None,
        validate_default=True,
        description="SASL user of this component (required with a SASL protocol)",
    )
    nnt_kafka_sasl_password: SecretStr | None = Field(
        default=None,
        validate_default=True,
        description="its password (required with a SASL protocol; never logged)",
    )
    nnt_kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the brokers' certificates (SSL protocols); "
        "unset: the system's CAs",
    )
    nnt_kafka_ssl_certfile: Path | None = Field(
        default=None,
        description="PEM client certificate, for brokers that require mutual TLS",
    )
    nnt_kafka_ssl_keyfile: Path | None = Field(
        default=None,
        validate_default=True,
        description="PEM private key of the client certificate (with NNT_KAFKA_SSL_CERTFILE)",
    )

    @field_validator("nnt_kafka_security_protocol", "nnt_kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator(
        "nnt_kafka_sasl_username",
        "nnt_kafka_sasl_password",
        "nnt_kafka_ssl_cafile",
        "nnt_kafka_ssl_certfile",
        "nnt_kafka_ssl_keyfile",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker compose passes `${VAR:-}`: an empty value means the variable is not used.
        return None if value == "" else value

    @field_validator("nnt_kafka_sasl_username", "nnt_kafka_sasl_password")
    @classmethod
    def _sasl(cls, value: Any, info: ValidationInfo) -> Any:
        protocol = info.data.get("nnt_kafka_security_protocol")
        if protocol in SASL and value is None:
            raise ValueError(
                f"required with {PROTOCOL}={protocol}: set NNT_KAFKA_SASL_USERNAME and "
                "NNT_KAFKA_SASL_PASSWORD to the SASL user this component logs in as"
            )
        if protocol not in (None, *SASL) and value is not None:
            raise ValueError(
                f"is set but {PROTOCOL}={protocol} sends no credentials: set {PROTOCOL} "
                "to SASL_PLAINTEXT or SASL_SSL, or unset it"
            )
        return value

    @field_validator("nnt_kafka_ssl_cafile", "nnt_kafka_ssl_certfile", "nnt_kafka_ssl_keyfile")
    @classmethod
    def _tls_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        protocol = info.data.get("nnt_kafka_security_protocol")
        if protocol not in (None, *TLS):
            raise ValueError(
                f"is set but {PROTOCOL}={protocol} does not use TLS: set {PROTOCOL} "
                "to SSL or SASL_SSL, or unset it"
            )
        path = value.expanduser()
        if not path.is_file():
            raise ValueError(
                f"no file at {value}: give the path of the PEM file as this process sees it "
                "(in a container, mount it there)"
            )
        return path

    @field_validator("nnt_kafka_ssl_cafile")
    @classmethod
    def _ca_loads(cls, value: Path | None) -> Path | None:
        # Checked here, so a wrong file stops the component at start, not at its first connection.
        if value is not None:
            try:
                ssl.create_default_context(cafile=value)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    f"{value} holds no PEM certificate ({exc}): give the certificate of the "
                    "CA that signed the brokers' certificates"
                ) from exc
        return value

    @field_validator("nnt_kafka_ssl_keyfile")
    @classmethod
    def _client_certificate(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if "nnt_kafka_ssl_certfile" not in info.data:
            return value  # the certificate was refused already
        certfile = info.data["nnt_kafka_ssl_certfile"]
        if (value is None) != (certfile is None):
            raise ValueError(
                "mutual TLS needs both NNT_KAFKA_SSL_CERTFILE and NNT_KAFKA_SSL_KEYFILE: "
                "set both, or neither"
            )
        if value is not None:
            try:
                # An empty password: an encrypted key fails here instead of prompting.
                ssl.create_default_context().load_cert_chain(certfile, value, password="")
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    f"{certfile} and {value} are not a PEM certificate and its unencrypted "
                    f"key ({exc}): give the client certificate and the key it was issued for"
                ) from exc
        return value

    @property
    def sasl(self) -> bool:
        """True when clients log in with a user name and password."""
        return self.nnt_kafka_security_protocol in SASL

    @property
    def tls(self) -> bool:
        """True when connections to the brokers are encrypted."""
        return self.nnt_kafka_security_protocol in TLS

    def _password(self) -> str:
        return (
            self.nnt_kafka_sasl_password.get_secret_value() if self.nnt_kafka_sasl_password else ""
        )

    def confluent_config(self) -> dict[str, str]:
        """librdkafka options (confluent-kafka Producer, Consumer, AdminClient); {} for PLAINTEXT."""
        if not (self.sasl or self.tls):
            return {}
        config: dict[str, str] = {"security.protocol": self.nnt_kafka_security_protocol}
        if self.sasl:
            config["sasl.mechanisms"] = self.nnt_kafka_sasl_mechanism
            config["sasl.username"] = self.nnt_kafka_sasl_username or ""
            config["sasl.password"] = self._password()
        files = {
            "ssl.ca.location": self.nnt_kafka_ssl_cafile,
            "ssl.certificate.location": self.nnt_kafka_ssl_certfile,
            "ssl.key.location": self.nnt_kafka_ssl_keyfile,
        }
        config.update({key: str(path) for key, path in files.items() if path is not None})
        return config

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the aiokafka and Faust clients (None without TLS)."""
        if not self.tls:
            return None
        from aiokafka.helpers import create_ssl_context

        return create_ssl_context(
            cafile=self.nnt_kafka_ssl_cafile,
            certfile=self.nnt_kafka_ssl_certfile,
            keyfile=self.nnt_kafka_ssl_keyfile,
        )

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of AIOKafkaConsumer / AIOKafkaProducer; {} for PLAINTEXT."""
        if not (self.sasl or self.tls):
            return {}
        kwargs: dict[str, Any] = {"security_protocol": self.nnt_kafka_security_protocol}
        if self.sasl:
            # aiokafka takes the SCRAM user and password under the same two names.
            kwargs["sasl_mechanism"] = self.nnt_kafka_sasl_mechanism
            kwargs["sasl_plain_username"] = self.nnt_kafka_sasl_username
            kwargs["sasl_plain_password"] = self._password()
        if self.tls:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def faust_credentials(self) -> Any:
        """The Faust app's `broker_credentials` (None for PLAINTEXT).

        Faust hands them to aiokafka: SASLCredentials become SASL_SSL only when given an
        ssl_context, and SSLCredentials need one built here (their own default fails).
        """
        if not (self.sasl or self.tls):
            return None
        import faust

        if not self.sasl:
            return faust.SSLCredentials(self.ssl_context())
        return faust.SASLCredentials(
            username=self.nnt_kafka_sasl_username,
            password=self._password(),
            mechanism=self.nnt_kafka_sasl_mechanism,
            ssl_context=self.ssl_context(),
        )

    def environment(self) -> dict[str, str]:
        """The variables that give a child process (a trainer) these same settings; the
        password among them, so the result goes into an environment and never into a log."""
        env = {}
        for name in KafkaSecurity.model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is not None:
                env[name.upper()] = str(value)
        return env


def load() -> KafkaSecurity:
    """Read the NNT_KAFKA_* security variables; raise KafkaSecurityError naming a bad one."""
    try:
        return KafkaSecurity()
    except ValidationError as exc:
        name, why = variable_error(exc)
        raise KafkaSecurityError(f"{name}: {why}") from exc
