"""Who a trainer of the process runtime runs as: never root when the orchestrator can help it.

An orchestrator running as root starts each trainer as an unprivileged user (`NNT_RUN_USER`,
`nobody` by default) so that a hostile model or dataset that found a way past the allowlists
would still own nothing but its run directory. The trainer needs three things it could
otherwise only reach through root's private folders, and gets each without opening them:

- its run directory: made its own (chown) and entered by the orchestrator before the switch
  (the child's working directory is set while still root), so `$NNT_HOME` may stay mode 700;
- its datasets: opened by the orchestrator and inherited as file descriptors, each reached
  through a link `.datasets/<role><suffix>` -> `/proc/self/fd/N` in the run directory (the
  file itself is group-readable by the run user's group only: never world-readable);
- the Python that runs it: it must be able to execute `NNT_TRAINER_PYTHON` and import the
  project, which a probe checks once at start.

`auto` (the default) switches when running as root and the probe passes, and otherwise keeps
the orchestrator's own user with a warning; a named user must work or the orchestrator stops.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.settings import OrchestratorError, OrchestratorSettings
from schemas.run import RunSpec

log = logging.getLogger(__name__)

AUTO_USER = "nobody"
LINKS_DIR = ".datasets"  # in the run directory: one link per dataset of the run
LINKS_VARIABLE = "NNT_TRAINER_DATASET_LINKS"  # JSON {stored path: link}, read by the trainer
DATASET_MODE = 0o640  # owner (the service) and the run group read; nobody else
PROBE_TIMEOUT_S = 30.0  # a real Python imports the launcher in about a second


@dataclass(frozen=True)
class Identity:
    """The unprivileged user and group trainers run as."""

    name: str
    uid: int
    gid: int


@dataclass
class Handover:
    """What one trainer start needs: its environment additions and the descriptors to keep."""

    env: dict[str, str] = field(default_factory=dict)
    fds: list[int] = field(default_factory=list)

    def close(self) -> None:
        """The parent's copies of the descriptors (the child keeps its own)."""
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()


def resolve(value: str) -> Identity:
    """A user name or numeric uid as an Identity; OrchestratorError naming NNT_RUN_USER."""
    try:
        entry = pwd.getpwuid(int(value)) if value.isdigit() else pwd.getpwnam(value)
    except (KeyError, ValueError):
        if value.isdigit():  # a uid with no passwd entry: its own number as the group
            return Identity(value, int(value), int(value))
        raise OrchestratorError(
            f"NNT_RUN_USER: no user {value!r} on this host; name an existing unprivileged user "
            "(or a uid), or 'auto'"
        ) from None
    if entry.pw_uid == 0:
        raise OrchestratorError(
            f"NNT_RUN_USER: {value!r} is root; name an unprivileged user, or 'auto'"
        )
    return Identity(entry.pw_name, entry.pw_uid, entry.pw_gid)


def choose(
    settings: OrchestratorSettings, project_root: str, env: dict[str, str]
) -> Identity | None:
    """The identity trainers run as (probed with their environment `env`), or None to keep
    this process's own user."""
    wanted = settings.nnt_run_user
    if os.geteuid() != 0 or wanted == "self":
        return None
    identity = resolve(AUTO_USER if wanted == "auto" else wanted)
    problem = probe(identity, settings.nnt_trainer_python, project_root, env)
    if problem is None:
        log.info("trainers run as %s (uid %d)", identity.name, identity.uid)
        return identity
    if wanted != "auto":
        raise OrchestratorError(
            f"NNT_RUN_USER={wanted}: that user cannot run the trainer ({problem}); install "
            "Python and the project where it can read them (e.g. a system Python and "
            "/opt/nntracker), or set NNT_RUN_USER=auto"
        )
    log.warning(
        "trainers run as root: %s cannot run the trainer (%s); install Python and the project "
        "where that user can read them, or set NNT_RUN_USER=self to silence this",
        identity.name,
        problem,
    )
    return None


def probe(identity: Identity, python: str, project_root: str, env: dict[str, str]) -> str | None:
    """None when `identity` can start `python` and import the launcher; else why not."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv
            [python, "-c", "import orchestrator.launch, schemas.run"],
            cwd="/",
            env=python_env(env, project_root),
            user=identity.uid,
            group=identity.gid,
            extra_groups=[],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{python}: {exc.strerror if isinstance(exc, OSError) else exc}"
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit {done.returncode}"
    return None


def hand_over(identity: Identity, spec: RunSpec, run_dir: Path) -> Handover:
    """Make `run_dir` the trainer's, and open its datasets for it (see the module doc)."""
    links = run_dir / LINKS_DIR
    links.mkdir(exist_ok=True)
    handover = Handover()
    mapping: dict[str, str] = {}
    try:
        for role, path in spec.datasets.model_dump().items():
            if not path or path in mapping:
                continue
            share(Path(path), identity.gid)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            handover.fds.append(fd)
            link = links / f"{role}{Path(path).suffix}"
            link.unlink(missing_ok=True)
            link.symlink_to(f"/proc/self/fd/{fd}")
            mapping[path] = f"{LINKS_DIR}/{link.name}"
    except OSError:
        handover.close()
        raise
    give(run_dir, identity)
    handover.env = {LINKS_VARIABLE: json.dumps(mapping)}
    return handover


def share(path: Path, gid: int) -> None:
    """A stored dataset readable by the run group and its owner only (mode 640)."""
    os.chown(path, -1, gid)
    path.chmod(DATASET_MODE)


def give(run_dir: Path, identity: Identity, open_if_denied: bool = False) -> None:
    """Every file of the run directory to the trainer's user (it writes checkpoints there);
    with `open_if_denied`, a file this process may not give away (rootless) is opened to all
    instead, still inside the private $NNT_HOME."""
    for root, dirs, files in os.walk(run_dir):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            try:
                os.chown(name, identity.uid, identity.gid, follow_symlinks=False)
            except PermissionError:
                if not open_if_denied:
                    raise
                os.chmod(name, 0o777 if os.path.isdir(name) else 0o666)


def python_env(env: dict[str, str], project_root: str) -> dict[str, str]:
    """`env` with the project importable, for a Python started outside the project root."""
    paths = [project_root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
