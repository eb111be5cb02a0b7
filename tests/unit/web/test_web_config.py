"""Web settings: env parsing, fail-fast messages, the generated secret key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from web import config

SOCKET_URL = "postgresql://postgres:@/postgres?host=/tmp/pg"


def test_it_parses_a_tcp_url() -> None:
    db = config.parse_database_url(
        "postgresql://nnt:s%40cret@db.local:6543/nntracker?sslmode=require"
    )
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("nntracker", "nnt", "s@cret")
    assert (db["HOST"], db["PORT"]) == ("db.local", "6543")
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_it_parses_a_socket_url() -> None:
    db = config.parse_database_url(SOCKET_URL)
    assert (db["HOST"], db["NAME"], db["OPTIONS"]) == ("/tmp/pg", "postgres", {})


def test_it_names_a_missing_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(config.ConfigError, match="DATABASE_URL is required"):
        config.load()


def test_it_names_a_bad_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://x/y")
    with pytest.raises(config.ConfigError, match="DATABASE_URL.*postgresql://"):
        config.load()


def test_it_names_a_bad_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", SOCKET_URL)
    monkeypatch.setenv("NNT_WEB_PORT", "eighty")
    with pytest.raises(config.ConfigError, match="NNT_WEB_PORT"):
        config.load()


def test_it_reads_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NNT_KAFKA_BOOTSTRAP", "NNT_WEB_PORT", "NNT_DEBUG", "NNT_ALLOWED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", SOCKET_URL)
    env = config.load()
    assert env.nnt_kafka_bootstrap == "127.0.0.1:9092"
    assert env.nnt_web_port == 8000 and env.nnt_debug is False
    assert env.allowed_hosts() == ["localhost", "127.0.0.1"]


def test_it_generates_the_secret_key_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", SOCKET_URL)
    monkeypatch.setenv("NNT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NNT_SECRET_KEY", raising=False)
    first = config.secret_key(config.load())
    second = config.secret_key(config.load())
    path = tmp_path / "home" / config.SECRET_FILE
    assert first == second and len(first) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_it_prefers_the_secret_key_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", SOCKET_URL)
    monkeypatch.setenv("NNT_HOME", str(tmp_path))
    monkeypatch.setenv("NNT_SECRET_KEY", "from-env")
    assert config.secret_key(config.load()) == "from-env"
    assert not (tmp_path / config.SECRET_FILE).exists()


def test_it_makes_data_folders_private_and_closes_an_open_one(tmp_path: Path) -> None:
    made = config.private_dir(tmp_path / "new" / "tmp")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    (tmp_path / "open").mkdir(mode=0o755)
    (tmp_path / "open").chmod(0o755)
    assert stat.S_IMODE(config.private_dir(tmp_path / "open").stat().st_mode) == 0o700


def test_it_keeps_the_model_limit_within_one_kafka_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from schemas.topics import MAX_MESSAGE_BYTES

    monkeypatch.setenv("DATABASE_URL", SOCKET_URL)
    monkeypatch.setenv("NNT_MAX_MODEL_BYTES", str(MAX_MESSAGE_BYTES + 1))
    with pytest.raises(config.ConfigError, match="NNT_MAX_MODEL_BYTES"):
        config.load()
