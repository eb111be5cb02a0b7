"""Who trainers of the process runtime run as (orchestrator/identity.py), without Kafka.

The end-to-end proof (a real run trained as nobody) is
tests/integration/orchestrator/test_orchestrator_run_user.py; these cover the choices.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from orchestrator import identity
from orchestrator.settings import OrchestratorError
from tests.unit.orchestrator.fakes import settings_of

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


def unreachable_python(tmp_path: Path) -> str:
    """A Python inside a mode-700 folder: only its owner (root) can execute it."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    python = private / "python3"
    python.symlink_to(os.path.realpath("/usr/bin/python3"))
    return str(python)


def test_auto_keeps_root_with_a_warning_when_nobody_cannot_run_the_trainer(
    as_root: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_of(tmp_path, nnt_trainer_python=unreachable_python(tmp_path))
    with caplog.at_level(logging.WARNING, "orchestrator.identity"):
        assert identity.choose(settings, str(ROOT), dict(os.environ)) is None
    assert "trainers run as root: nobody cannot run the trainer" in caplog.text
    assert "Permission denied" in caplog.text


def test_a_named_user_that_cannot_run_the_trainer_stops_the_orchestrator(
    as_root: None, tmp_path: Path
) -> None:
    settings = settings_of(
        tmp_path, nnt_run_user="nobody", nnt_trainer_python=unreachable_python(tmp_path)
    )
    with pytest.raises(OrchestratorError, match=r"NNT_RUN_USER=nobody: that user cannot run"):
        identity.choose(settings, str(ROOT), dict(os.environ))


@pytest.mark.parametrize(
    ("value", "says"),
    [("no-such-user-nnt", "no user 'no-such-user-nnt'"), ("root", "is root"), ("0", "is root")],
)
def test_it_refuses_an_unknown_user_or_root(value: str, says: str) -> None:
    with pytest.raises(OrchestratorError, match=f"NNT_RUN_USER: .*{says}"):
        identity.resolve(value)


def test_self_never_switches(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, nnt_run_user="self")
    assert identity.choose(settings, str(ROOT), dict(os.environ)) is None
