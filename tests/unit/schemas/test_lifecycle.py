"""The lifecycle table (schemas/lifecycle.py) is the one source of what each status allows: the
pages' JavaScript gets exactly it, and the orchestrator carries out exactly what it allows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestrator.rundirs import RunDir, RunState
from orchestrator.runtime import Handle
from orchestrator.service import Orchestrator
from schemas import codecs, lifecycle
from tests.unit.orchestrator.fakes import create_command, events, make, starts
from tests.unit.orchestrator.fakes import lifecycle as command

ROOT = Path(__file__).resolve().parents[3]
STATIC = ROOT / "web" / "static" / "web"
LIVE = ("starting", "running", "paused")  # a process on this host behind it


def test_it_allows_what_the_docs_say() -> None:
    assert lifecycle.actions("running") == ["pause", "stop", "delete"]
    assert lifecycle.actions("paused") == ["resume", "stop", "delete"]
    assert lifecycle.actions("queued") == ["stop", "delete"]
    assert lifecycle.actions("failed") == ["resume", "delete"]
    assert lifecycle.actions("finished") == ["delete"]
    assert lifecycle.actions("deleted") == []
    assert not lifecycle.allowed("explode", "running") and not lifecycle.allowed("pause", "odd")
    assert lifecycle.refusal("pause", "queued") == (
        "cannot pause a queued simulation; pause takes running ones"
    )
    assert "deleted" in lifecycle.refusal("delete", "deleted")


def test_the_pages_get_exactly_the_python_rules() -> None:
    from web.views import site

    exported = site(None)["nnt_lifecycle"]  # type: ignore[arg-type]
    assert json.loads(json.dumps(exported)) == {
        action: sorted(statuses, key=lifecycle.STATUSES.index)
        for action, statuses in lifecycle.ALLOWED.items()
    }
    base = (ROOT / "web" / "templates" / "base.html").read_text()
    assert '{{ nnt_lifecycle|json_script:"nnt-lifecycle" }}' in base
    shared = (STATIC / "simulations.js").read_text()
    assert 'getElementById("nnt-lifecycle")' in shared and "NNT.lifecycle = " in shared
    for page in ("list.js", "live.js"):
        text = (STATIC / page).read_text()
        assert "NNT.lifecycle.allowed(" in text, page
        # no table of its own: no status list next to an action name
        assert not re.search(r"(pause|resume|stop|delete)\s*:\s*\[", text), page


def _run_in(orch: Orchestrator, status: str) -> RunDir:
    """One of the orchestrator's runs, put in `status` (a live one with its process here)."""
    orch.on_work(codecs.dumps(create_command()))
    sid = starts(orch)[0].simulation_id
    rd = RunDir(orch.settings.runs_dir, sid)
    rd.write(RunState(status, host="h1" if status in LIVE else None))
    if status in LIVE:
        orch.handles[sid] = Handle(sid, rd.path, pid=1)
    return rd


@pytest.mark.parametrize("status", [s for s in lifecycle.STATUSES if s != "deleted"])
@pytest.mark.parametrize("action", lifecycle.ACTIONS)
def test_the_orchestrator_carries_out_exactly_what_the_rules_allow(
    tmp_path: Path, action: str, status: str
) -> None:
    orch = make(tmp_path)
    rd = _run_in(orch, status)
    before = len(events(orch))
    orch.on_broadcast(codecs.dumps(command(action, rd.simulation_id)))
    answers = [e[1] for e in events(orch)[before:]]
    assert answers, "every command is answered"
    refused = "rejected" in answers
    assert refused != lifecycle.allowed(action, status), (action, status, events(orch)[before:])


@pytest.mark.parametrize("action", lifecycle.ACTIONS)
def test_the_orchestrator_changes_nothing_of_a_deleted_run(tmp_path: Path, action: str) -> None:
    orch = make(tmp_path)
    rd = _run_in(orch, "queued")
    orch.on_broadcast(codecs.dumps(command("delete", rd.simulation_id)))
    before = len(events(orch))
    orch.on_broadcast(codecs.dumps(command(action, rd.simulation_id)))
    answers = [e[1] for e in events(orch)[before:]]
    # refused, or (delete) answered as already done: nothing runs, nothing comes back
    assert answers in (["rejected"], ["deleted"]) and not rd.exists()
    assert (answers == ["deleted"]) == (action == "delete")
    assert not lifecycle.actions("deleted")  # so the web refuses all four (409)
