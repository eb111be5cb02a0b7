"""TimescaleDB's build for the embedded PostgreSQL: built once into the cache and installed
from it, one waiting line while another process builds, and one line naming the cause of a
failure. A stand-in source tarball (a `bootstrap` writing a tiny Makefile) keeps it fast; the
real build runs in the integration tests' session start."""

from __future__ import annotations

import fcntl
import io
import tarfile
import threading
import time
from pathlib import Path

import pytest

from infra import timescale
from infra.settings import TimescaleSettings

VERSION = "9.9.9"


def _wheel(root: Path) -> timescale.Wheel:
    include = root / "wheel" / "include" / "server"
    include.mkdir(parents=True)
    (include / "postgres.h").write_text("/* headers */\n")
    for sub in ("lib", "share/extension"):
        (root / "wheel" / sub).mkdir(parents=True)
    return timescale.Wheel(
        pg_config=root / "wheel" / "bin" / "pg_config",
        pkglibdir=root / "wheel" / "lib",
        extension_dir=root / "wheel" / "share" / "extension",
        include_server=include,
        pg_version="18.6",
        wheel_version="0-test",
    )


def _tarball(root: Path, w: timescale.Wheel, configure: str = "") -> Path:
    """A source tarball whose bootstrap writes a Makefile that installs what TimescaleDB does."""
    lib, ext = w.pkglibdir, w.extension_dir
    makefile = (
        "all:\n\t@echo '[ 50%] Building C object'\n\t@echo '[100%] Linking'\n"
        "install:\n"
        f"\tmkdir -p $(DESTDIR){lib} $(DESTDIR){ext}\n"
        f"\techo loader > $(DESTDIR){lib}/timescaledb.so\n"
        f"\techo lib > $(DESTDIR){lib}/timescaledb-{VERSION}.so\n"
        f"\techo \"default_version = '{VERSION}'\" > $(DESTDIR){ext}/timescaledb.control\n"
        f"\techo sql > $(DESTDIR){ext}/timescaledb--{VERSION}.sql\n"
    )
    bootstrap = (
        "#!/usr/bin/env bash\nset -e\n"
        f"{configure}\n"
        'mkdir -p "$BUILD_DIR"\n'
        f"cat > \"$BUILD_DIR/Makefile\" <<'MK'\n{makefile}MK\n"
    )
    path = root / f"timescaledb-{VERSION}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        data = bootstrap.encode()
        info = tarfile.TarInfo(f"timescaledb-{VERSION}/bootstrap")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture()
def wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> timescale.Wheel:
    """A stand-in wheel, and a cache of its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    w = _wheel(tmp_path)
    monkeypatch.setattr(timescale, "wheel", lambda: w)
    return w


def _settings(source: Path) -> TimescaleSettings:
    return TimescaleSettings(nnt_timescaledb="auto", nnt_timescaledb_source=source)


def test_it_builds_once_then_installs_from_the_cache(
    wheel: timescale.Wheel, tmp_path: Path
) -> None:
    source = _tarball(tmp_path, wheel)
    said: list[str] = []
    found = timescale.provision(_settings(source), say=said.append)
    assert found.version == VERSION
    assert any(line.startswith("building timescaledb-9.9.9.tar.gz") for line in said)
    assert "TimescaleDB build 50%" in said
    assert (wheel.pkglibdir / f"timescaledb-{VERSION}.so").read_text() == "lib\n"

    for path in [*wheel.pkglibdir.iterdir(), *wheel.extension_dir.iterdir()]:
        path.unlink()  # a rebuilt .venv: the wheel lost them, the cache kept them
    said.clear()
    assert timescale.provision(_settings(source), say=said.append).version == VERSION
    assert said == []  # no build, no line
    assert (wheel.extension_dir / "timescaledb.control").exists()
    cached = list(timescale.cache_root().iterdir())
    assert [p.name for p in cached if p.is_dir()] == [timescale.cache_key(source, wheel)]


def test_it_reports_a_failed_build_in_one_line_with_its_log(
    wheel: timescale.Wheel, tmp_path: Path
) -> None:
    broken = 'echo "CMake Error at CMakeLists.txt:7 (message): PostgreSQL too old"; exit 1'
    source = _tarball(tmp_path, wheel, configure=broken)
    found = timescale.provision(_settings(source), say=lambda line: None)
    assert found.version is None
    assert found.reason.startswith("TimescaleDB build failed at configure (cmake): CMake Error")
    log = Path(found.reason.rsplit("(log: ", 1)[1].rstrip(")"))
    assert "PostgreSQL too old" in log.read_text()
    assert [p for p in timescale.cache_root().iterdir() if p.is_dir()] == []  # no half build
    with pytest.raises(timescale.TimescaleError, match="CMake Error"):
        timescale.provision(_settings(source), say=lambda line: None, required=True)


def test_it_names_missing_build_tools_and_their_debian_packages(
    wheel: timescale.Wheel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _tarball(tmp_path, wheel)
    monkeypatch.setattr(timescale.shutil, "which", lambda tool: None if tool == "cmake" else tool)
    found = timescale.provision(_settings(source), say=lambda line: None)
    assert found.reason == (
        "cannot build TimescaleDB: cmake not found (Debian: apt-get install -y cmake gcc make)"
    )


def test_it_says_where_to_find_a_source_when_there_is_none(
    wheel: timescale.Wheel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timescale, "VENDOR", tmp_path / "no-vendor")
    settings = TimescaleSettings(nnt_timescaledb="auto", nnt_timescaledb_source=None)
    found = timescale.provision(settings, say=lambda line: None)
    assert found.version is None and "set NNT_TIMESCALEDB_SOURCE" in found.reason
    off = timescale.provision(TimescaleSettings(nnt_timescaledb="off"))
    assert off.reason == "NNT_TIMESCALEDB=off"


def test_it_waits_for_another_process_building_instead_of_building_twice(
    wheel: timescale.Wheel, tmp_path: Path
) -> None:
    source = _tarball(tmp_path, wheel)
    key = timescale.cache_key(source, wheel)
    root = timescale.cache_root()
    root.mkdir(parents=True)
    other = tmp_path / "other-build"
    said: list[str] = []
    result: list[timescale.Availability] = []
    with (root / f"{key}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process is building
        worker = threading.Thread(
            target=lambda: result.append(timescale.provision(_settings(source), say=said.append))
        )
        worker.start()
        deadline = time.monotonic() + 30
        while not said and time.monotonic() < deadline:
            time.sleep(0.05)
        assert said and said[0].startswith("waiting for another process")
        # what the other process leaves: its finished build, renamed into place
        for sub, name, text in (
            ("lib", "timescaledb.so", "loader"),
            ("lib", f"timescaledb-{VERSION}.so", "theirs"),
            ("share/extension", "timescaledb.control", f"default_version = '{VERSION}'"),
        ):
            (other / sub).mkdir(parents=True, exist_ok=True)
            (other / sub / name).write_text(text)
        (other / timescale.MANIFEST).write_text("{}")
        other.rename(root / key)
        fcntl.flock(lock, fcntl.LOCK_UN)
    worker.join(30)
    assert result and result[0].version == VERSION
    assert not any(line.startswith("building") for line in said)
    assert (wheel.pkglibdir / f"timescaledb-{VERSION}.so").read_text() == "theirs"
