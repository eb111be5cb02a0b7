"""Orchestrator configuration, read once from the environment (fails fast on bad values)."""

from __future__ import annotations

import os
import socket
import stat
import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from schemas import topics
from schemas.auth import CommandSecretSetting
from schemas.common import variable_error
from schemas.kafkaauth import KafkaSecurity

GIB = 1024**3
ENGINE_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
)


class OrchestratorError(RuntimeError):
    """Base of the orchestrator's errors; the text is shown to users as a status message."""


def trainer_image() -> str:
    """The trainer image `python -m infra.images` builds for this version of the project."""
    try:
        return f"nntracker-trainer:{metadata.version('nntracker')}"
    except metadata.PackageNotFoundError:  # a checkout that was never installed
        return "nntracker-trainer:latest"


class OrchestratorSettings(KafkaSecurity, CommandSecretSetting):
    """Every setting of one orchestrator process (environment variables of the same name);
    its Kafka security settings also go to every trainer it starts."""

    model_config = SettingsConfigDict(extra="ignore")

    nnt_kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="host:port of the broker"
    )
    nnt_home: Path = Field(
        default=Path("~/.local/share/nntracker"),
        description="run directories and the dataset store; with DATABASE_URL only this "
        "host's working copies (no folder is shared between hosts)",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL every orchestrator reaches: run records, one claim per "
        "command, host leases, datasets and checkpoints, so hosts share no filesystem; "
        "unset: the record lives in NNT_HOME (one host, or hosts sharing it)",
    )
    nnt_host_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="with DATABASE_URL: an orchestrator silent this long has lost its runs; "
        "another takes them over (running ones resume from their last checkpoint)",
    )
    nnt_runtime: str = Field(default="process", description="process | docker")
    nnt_orchestrator_group: str = Field(
        default=topics.ORCHESTRATOR_GROUP,
        description="shared consumer group: `create` and `start` commands are split among members",
    )
    nnt_hostname: str = Field(
        default_factory=socket.gethostname,
        description="this orchestrator's name; owns the runs it starts (recorded in run dirs)",
    )
    nnt_max_runs: int = Field(default=2, ge=1, description="concurrent runs on this host")
    nnt_trainer_python: str = Field(default=sys.executable, description="Python that runs trainers")
    nnt_run_user: str = Field(
        default="auto",
        min_length=1,
        description="process runtime, orchestrator running as root: the unprivileged user (name "
        "or uid) each trainer runs as (orchestrator/identity.py). `auto`: `nobody` when it can "
        "run NNT_TRAINER_PYTHON and import the project, else root with a warning; `self`: "
        "trainers run as the orchestrator's user",
    )
    nnt_allow_pickle: bool = Field(default=False, description="let trainers load pandas pickles")
    # Limits of one run (both runtimes).
    nnt_run_memory_bytes: int = Field(default=2 * GIB, ge=64 * 1024**2, description="per run")
    nnt_run_cpus: float = Field(
        default=1.0,
        gt=0,
        description="CPUs per run (docker: nano_cpus; process: pinned to ceil(value) cores)",
    )
    nnt_run_pids: int = Field(default=512, ge=16, description="processes/threads per container")
    # Docker runtime.
    nnt_trainer_image: str = Field(
        default_factory=trainer_image,
        description="trainer image (`make images` builds nntracker-trainer:<version>)",
    )
    nnt_container_python: str = Field(
        default="python", description="Python inside the trainer image (trainer-gpu: `python3`)"
    )
    nnt_docker_host_mounts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated host paths bind-mounted read-only at the same place in "
        "every trainer container (e.g. the Kafka TLS files' folder, docs/security.md); "
        "a path that is or holds a Docker/podman socket is refused",
    )
    nnt_container_network: str = Field(
        default="host",
        min_length=1,
        description="network mode of trainer containers: `host` (local: Kafka on 127.0.0.1) "
        "or, in production, a network that reaches only Kafka (NNT_KAFKA_BOOTSTRAP must then "
        "be an address valid inside it)",
    )
    # Quotas and auto-stop rules.
    nnt_quota_max_runs: int = Field(default=0, ge=0, description="active runs per owner; 0: none")
    nnt_quota_max_memory: int = Field(
        default=0, ge=0, description="sum of active runs' memory limits per owner, bytes; 0: none"
    )
    nnt_stall_seconds: float = Field(
        default=1800, gt=0, description="stop a running run with no epoch for this long"
    )
    nnt_resource_period: float = Field(default=5.0, gt=0, description="seconds between samples")
    nnt_stop_grace_seconds: float = Field(
        default=120.0,
        gt=0,
        description="a stopped run still alive this long after SIGTERM is killed (it resumes "
        "from its last checkpoint)",
    )
    # The Kafka principal of the runs (docs/security.md, "Kafka in production").
    nnt_trainer_kafka_sasl_username: str | None = Field(
        default=None,
        description="SASL user every trainer logs in as (only Write on nnt.epochs, nnt.tensors "
        "and nnt.status); unset: trainers log in as this orchestrator. Needs a SASL protocol",
    )
    nnt_trainer_kafka_sasl_password: SecretStr | None = Field(
        default=None, description="its password (never logged; in each trainer's environment)"
    )
    # Pre-flight checks of experiments (orchestrator/preflight.py).
    nnt_preflight: bool = Field(
        default=True,
        description="check each new experiment on one batch before queuing its runs (a create "
        "whose experiment passed a `check` here is not checked twice)",
    )
    nnt_preflight_seconds: float = Field(
        default=300.0, gt=0, description="longest a pre-flight check may take"
    )
    # Dataset URLs.
    nnt_max_dataset_bytes: int = Field(default=2 * GIB, ge=1, description="largest download")
    nnt_fetch_timeout: float = Field(default=30.0, gt=0, description="connect/read timeout, s")
    nnt_fetch_total_seconds: float = Field(
        default=1800.0, gt=0, description="longest one download may take (off the poll loop)"
    )
    nnt_url_allow_loopback: bool = Field(
        default=False,
        description="TEST ONLY: let dataset URLs reach exactly 127.0.0.1 (the tests' local server). "
        "Never set it in production: it opens the orchestrator to SSRF on this host.",
    )

    @field_validator("nnt_home")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("nnt_runtime")
    @classmethod
    def _runtime(cls, value: str) -> str:
        if value not in ("process", "docker"):
            raise ValueError("must be 'process' or 'docker'")
        return value

    @field_validator("nnt_docker_host_mounts", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("nnt_docker_host_mounts")
    @classmethod
    def _no_engine_socket(cls, value: list[str]) -> list[str]:
        for path in value:
            if reason := engine_socket_in(path):
                raise ValueError(
                    f"{path!r} {reason}: a container that sees the engine's socket controls "
                    "the host; mount narrower paths"
                )
        return value

    @field_validator(
        "nnt_trainer_kafka_sasl_username",
        "nnt_trainer_kafka_sasl_password",
        "database_url",
        mode="before",
    )
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _trainer_principal(self) -> OrchestratorSettings:
        user, password = self.nnt_trainer_kafka_sasl_username, self.nnt_trainer_kafka_sasl_password
        if (user is None) != (password is None):
            missing = "PASSWORD" if password is None else "USERNAME"
            raise ValueError(
                f"NNT_TRAINER_KAFKA_SASL_{missing} is unset: set both the trainers' SASL user "
                "and its password, or neither"
            )
        if user is not None and not self.sasl:
            raise ValueError(
                "NNT_TRAINER_KAFKA_SASL_USERNAME is set but NNT_KAFKA_SECURITY_PROTOCOL="
                f"{self.nnt_kafka_security_protocol} sends no credentials: use SASL_PLAINTEXT "
                "or SASL_SSL, or unset it"
            )
        return self

    def trainer_kafka(self) -> dict[str, str]:
        """The Kafka security variables a trainer gets: this orchestrator's, with the trainers'
        own SASL user when one is set."""
        env = self.environment()
        if self.nnt_trainer_kafka_sasl_username and self.nnt_trainer_kafka_sasl_password:
            env["NNT_KAFKA_SASL_USERNAME"] = self.nnt_trainer_kafka_sasl_username
            env["NNT_KAFKA_SASL_PASSWORD"] = self.nnt_trainer_kafka_sasl_password.get_secret_value()
        return env

    @field_validator("nnt_hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not value or "/" in value or len(value) > 200:
            raise ValueError("must be a non-empty name without '/'")
        return value

    @property
    def runs_dir(self) -> Path:
        """Run directories, one per simulation (shared by every orchestrator of NNT_HOME)."""
        return self.nnt_home / "runs"

    @property
    def datasets_dir(self) -> Path:
        """Content-addressed dataset store shared with the web."""
        return self.nnt_home / "datasets"

    @property
    def state_dir(self) -> Path:
        """This host's private state (handled command ids)."""
        return self.nnt_home / "orchestrator" / self.nnt_hostname

    @property
    def claims_dir(self) -> Path:
        """Command claims shared by all orchestrators: one answer per command."""
        return self.nnt_home / "orchestrator" / "claims"


def _known_sockets() -> list[Path]:
    """Where container engines listen on this host (DOCKER_HOST's socket included)."""
    paths = [Path(p) for p in ENGINE_SOCKETS]
    docker_host = os.environ.get("DOCKER_HOST", "")
    if docker_host.startswith("unix://"):
        paths.append(Path(docker_host.removeprefix("unix://")))
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    paths += [Path(runtime_dir) / "podman" / "podman.sock", Path(runtime_dir) / "docker.sock"]
    return paths


def engine_socket_in(raw: str) -> str | None:
    """Why bind-mounting `raw` would hand a container the engine's socket, or None."""
    path = Path(raw).resolve()
    try:
        if stat.S_ISSOCK(path.stat().st_mode):
            return "is a socket"
    except OSError:
        pass
    for sock in _known_sockets():
        for candidate in {sock, sock.resolve()}:
            if candidate == path or path in candidate.parents:
                return f"contains the container engine socket {candidate}"
    return None


def load() -> OrchestratorSettings:
    """Read settings or raise OrchestratorError naming the variable."""
    try:
        return OrchestratorSettings()
    except ValidationError as exc:
        name, why = variable_error(exc)
        raise OrchestratorError(f"{name}: {why}") from exc
