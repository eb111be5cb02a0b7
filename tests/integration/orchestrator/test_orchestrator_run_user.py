"""A root orchestrator never runs a trainer as root: the real process runtime, Kafka and Keras.

The trainer runs as `nobody` with a Python that user can execute (Debian's, reading this
virtualenv's packages), from a NNT_HOME inside a mode-700 folder that `nobody` cannot
enter: it reaches its run directory (entered before the switch) and its datasets (descriptors
opened for it) without any folder being opened to it.
"""

from __future__ import annotations

import pwd
import stat
import sys
import sysconfig
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.commands import CreateCommand
from schemas.experiment import simulation_id
from tests.integration.orchestrator.conftest import (
    Client,
    Orch,
    Tap,
    demo_experiment,
    epochs_of,
    skip_history,
    until,
)  # fmt: skip

pytestmark = pytest.mark.integration
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")


@pytest.fixture
def home() -> Iterator[Path]:
    """NNT_HOME (mode 755, as the orchestrator's own) inside a folder of our own that is closed
    to every other user (mode 700). Not pytest's basetemp: its mode depends on who made it."""
    with tempfile.TemporaryDirectory(prefix="nnt-private-") as private:
        home = Path(private) / "home"
        home.mkdir(mode=0o755)
        yield home


def test_a_root_orchestrator_trains_as_nobody_with_private_folders_and_datasets(
    as_root: None,
    home: Path,
    kafka_bootstrap: str,
    client: Client,
    status_tap: Tap,
    epoch_tap: Tap,
) -> None:
    assert SYSTEM_PYTHON.exists(), f"{SYSTEM_PYTHON} (Debian's python3) is needed"
    nobody = pwd.getpwnam("nobody")
    assert stat.S_IMODE(home.parent.stat().st_mode) & 0o007 == 0  # closed to nobody

    group = f"test-{uuid.uuid4()}"
    skip_history(kafka_bootstrap, group, "user-host")
    orch = Orch(home, kafka_bootstrap, "user-host", group, NNT_RUN_USER="nobody",
                NNT_TRAINER_PYTHON=str(SYSTEM_PYTHON),
                PYTHONPATH=sysconfig.get_paths()["purelib"]).start()  # fmt: skip
    try:
        assert "trainers run as nobody" in orch.log_tail()
        create = CreateCommand(experiment_id=uuid.uuid4(), issued_by="ana",
                               experiment=demo_experiment(home, 2, batch_size=64))  # fmt: skip
        client.send(create)
        sid = simulation_id(create.experiment_id, 0)
        until(lambda: status_tap.status(sid, "finished"), 240, "the run finished", orch)
        until(lambda: len(epochs_of(epoch_tap, sid)) >= 2, 60, "both epochs read", orch)
    finally:
        orch.kill()
    assert epochs_of(epoch_tap, sid) == [1, 2]
    run_dir = home / "runs" / str(sid)
    # What the trainer wrote is nobody's: it ran as nobody, not root.
    assert (run_dir / "exit").stat().st_uid == nobody.pw_uid
    assert (run_dir / "exit").read_text() == "0"
    # Datasets are never world-readable: the run's group reads them, nobody else.
    for stored in (home / "datasets").iterdir():
        info = stored.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o640, nobody.pw_gid), stored
