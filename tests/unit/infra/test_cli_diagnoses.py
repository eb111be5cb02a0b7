"""The CLI's diagnoses: `show` prints what is wrong with a run and what to try, `ls` the
verdict, `alerts` each new diagnosis once (also when following), all from the API's answers."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from client import cli
from infra.settings import InfraError

SID = str(uuid.uuid4())
NAN = {
    "problem": "nonfinite", "severity": "fatal", "title": "NaN in training",
    "summary": "loss is NaN since epoch 2", "fix": "lower the learning rate (try 0.01)",
    "layers": [], "first_epoch": 2, "last_epoch": 4, "active": True,
}  # fmt: skip
DEAD = {
    "problem": "dead_units", "severity": "warning", "title": "Dead ReLU units",
    "summary": "62% of dense_1's units never fire", "fix": "try LeakyReLU or He initialisation",
    "layers": ["dense_1"], "first_epoch": 1, "last_epoch": 1, "active": False,
}  # fmt: skip


class FakeClient:
    """Answers GETs from a table of paths; records each call's parameters."""

    def __init__(self, answers: dict[str, list[Any]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get(self, path: str, **params: Any) -> Any:
        self.calls.append((path, params))
        queue = self.answers[path]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def _run(monkeypatch: pytest.MonkeyPatch, client: FakeClient, argv: list[str]) -> int:
    monkeypatch.setattr(cli, "_client", lambda settings: client)
    args = cli._parser().parse_args(argv)
    return int(args.func(args, None) or 0)


def _sim(**extra: Any) -> dict[str, Any]:
    base = {"id": SID, "name": "sgd lr 10", "status": "running", "epoch": 4, "total_epochs": 10}
    return base | extra


def test_it_shows_the_active_diagnoses_with_their_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = _sim(health={"verdict": "failing"}, diagnoses=[NAN, DEAD])
    assert _run(monkeypatch, FakeClient({f"/api/simulations/{SID}": [sim]}), ["show", SID]) == 0
    out = capsys.readouterr().out
    assert "health: failing" in out and "diagnoses (1):" in out
    assert "FATAL    NaN in training: loss is NaN since epoch 2 [since epoch 2]" in out
    assert "try: lower the learning rate (try 0.01)" in out
    assert "Dead ReLU units" not in out, "a past diagnosis only with --all"
    _run(monkeypatch, FakeClient({f"/api/simulations/{SID}": [sim]}), ["show", SID, "--all"])
    out = capsys.readouterr().out
    assert "WARNING  Dead ReLU units: 62% of dense_1's units never fire (layers: dense_1)" in out
    assert "epochs 1-1, no longer seen" in out


@pytest.mark.parametrize(
    ("diagnoses", "expected"),
    [
        ([], "no active diagnosis: nothing looks wrong with this run"),
        (None, "no diagnosis: the trainer sent none for this run"),
    ],
)
def test_it_says_when_a_run_is_healthy_or_was_never_diagnosed(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    diagnoses: Any,
    expected: str,
) -> None:
    sim = _sim(health={"verdict": "healthy"} if diagnoses == [] else None, diagnoses=diagnoses)
    _run(monkeypatch, FakeClient({f"/api/simulations/{SID}": [sim]}), ["show", SID])
    assert expected in capsys.readouterr().out


def test_it_lists_the_verdict_of_each_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [_sim(health={"verdict": "failing"}, tags=[]), _sim(id=str(uuid.uuid4()), tags=[])]
    _run(monkeypatch, FakeClient({"/api/simulations": [items]}), ["ls"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "EPOCH", "HEALTH", "NAME"]
    assert lines[1].split()[3] == "failing" and lines[2].split()[3] == "-"


def _alert(problem: str, at: str) -> dict[str, Any]:
    d = NAN if problem == "nonfinite" else DEAD
    keys = ("problem", "severity", "title", "summary", "fix", "first_epoch")
    return {"simulation_id": SID, "name": "sgd lr 10", "at": at} | {k: d[k] for k in keys}


def test_it_follows_alerts_and_prints_each_once_oldest_first(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _alert("dead_units", "2025-05-01T09:00:00+00:00")
    second = _alert("nonfinite", "2025-05-01T09:05:00+00:00")
    polls = [[first], [second, first], [second, first]]
    client = FakeClient({"/api/alerts": polls})
    naps: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        # time.sleep is patched process-wide: other threads of the test session (an earlier
        # test's pollers, in the full suite) sleep too, and must neither count nor stop here.
        if threading.current_thread() is not threading.main_thread():
            real_sleep(seconds)
            return
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt  # the user's Ctrl-C: main() turns it into exit code 130

    monkeypatch.setattr("time.sleep", sleep)
    with pytest.raises(KeyboardInterrupt):
        _run(monkeypatch, client, ["alerts", "--follow", "--since", "2025-05-01T08:00Z"])
    out = capsys.readouterr().out
    assert out.count("Dead ReLU units") == 1 and out.count("NaN in training") == 1
    assert out.index("Dead ReLU units") < out.index("NaN in training")
    assert "sgd lr 10: NaN in training since epoch 2 - loss is NaN since epoch 2" in out
    sent = [params["since"] for _, params in client.calls]
    assert sent[0] == "2025-05-01T08:00:00+00:00"
    assert sent[1] == first["at"] and sent[2] == second["at"], "each poll asks after the newest"


def test_it_refuses_a_since_that_is_not_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient({"/api/alerts": [[]]})
    with pytest.raises(InfraError, match="--since: 'yesterday' is not a time"):
        _run(monkeypatch, client, ["alerts", "--since", "yesterday"])
    assert client.calls == []


def test_wait_counts_a_run_stopped_early_by_the_rule_as_done(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    note = {"problem": "divergence", "title": "Diverging loss", "summary": "loss 9.1", "epoch": 2,
            "total_epochs": 10, "saved_epochs": 8}  # fmt: skip
    stopped = _sim(status="stopped", epoch=2, early_stop=note,
                   message="stopped early after epoch 2 of 10: Diverging loss; saved 8 epochs")  # fmt: skip
    good = str(uuid.uuid4())
    finished = _sim(id=good, status="finished", epoch=10)
    client = FakeClient(
        {f"/api/simulations/{SID}": [stopped], f"/api/simulations/{good}": [finished]}
    )
    assert _run(monkeypatch, client, ["wait", SID, good, "--interval", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "stopped early after epoch 2 of 10" in out
    assert "1 simulation(s) stopped early on a fatal diagnosis, saving 8 epochs" in out
    user_stop = _sim(status="stopped", epoch=2, message="stopped on request after epoch 2")
    client = FakeClient({f"/api/simulations/{SID}": [user_stop]})
    assert _run(monkeypatch, client, ["wait", SID, "--interval", "0.01"]) == 1
