"""Early stopping on the real stack: a grid of a good and a far too high learning rate, each run
in the real trainer image under podman, events through Kafka into PostgreSQL, read back by the
web's API. The bad run ends `stopped` well before its last epoch with the diagnosis that ended
it; the good one trains every epoch; the experiment reports the epochs saved."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.commands import CreateCommand
from schemas.experiment import ExperimentConfig, simulation_id
from tests.accounts import USERS
from tests.integration.orchestrator.conftest import (
    Client,
    Orch,
    Tap,
    demo_experiment,
    epochs_of,
    rows,
    until,
)
from tests.integration.orchestrator.test_orchestrator_containers import container_host
from tests.streamworker import Worker

EPOCHS = 16
GOOD, BAD = 0.05, 10.0  # SGD on the digits: 10 kills every ReLU unit of the hidden layer


@pytest.fixture
def box(home: Path, kafka_bootstrap: str, docker_host: str, trainer_image: str) -> Iterator[Orch]:
    running = container_host(home, kafka_bootstrap, docker_host, trainer_image, slots=2)
    yield running
    running.kill()


@pytest.fixture
def web_worker(kafka_bootstrap: str, web_db_url: str, tmp_path: Path) -> Iterator[Worker]:
    """The stream workers writing into the web's own (migrated) database."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NNT_STREAM_REPORT_S", "1")
        running = Worker(kafka_bootstrap, web_db_url, tmp_path / "stream-worker")
    running.wait_ready()
    yield running
    running.stop()


def grid(home: Path) -> dict[str, Any]:
    return demo_experiment(
        home,
        EPOCHS,
        name="early-stop-grid",
        optimizers=[{"optimizer": "SGD"}],
        learning_rates=[GOOD, BAD],
        early_stop={"enabled": True, "patience": 2},
        collect={},  # everything: the dead-network rule reads the activations
    )


def owned_experiment(experiment_id: uuid.UUID, experiment: dict[str, Any]) -> Any:
    """The web's row of the experiment, owned by ana, as a submission leaves it."""
    from django.contrib.auth import get_user_model

    from web.simulations.models import Experiment

    # The command is signed as the test user ana (tests/accounts.py): the web's account has
    # her id, so the projection links the runs to it, as for a run submitted on the site.
    model = get_user_model()
    user = model.objects.filter(pk=USERS["ana"]).first() or model.objects.create_user(
        f"ana-{uuid.uuid4().hex[:8]}", password="pw-1-long", id=USERS["ana"]
    )
    config = ExperimentConfig.model_validate({k: v for k, v in experiment.items() if k != "model"})
    Experiment.objects.create(
        id=experiment_id, owner=user, name=config.name, config=config.model_dump(mode="json")
    )
    return user


def test_the_rule_stops_the_bad_run_early_and_the_experiment_reports_the_epochs_saved(
    django_ready: Path,
    web_db_url: str,
    box: Orch,
    web_worker: Worker,
    home: Path,
    client: Client,
    status_tap: Tap,
    epoch_tap: Tap,
) -> None:
    experiment = grid(home)
    create = CreateCommand(experiment_id=uuid.uuid4(), issued_by="ana", experiment=experiment)
    user = owned_experiment(create.experiment_id, experiment)
    client.send(create)
    good, bad = simulation_id(create.experiment_id, 0), simulation_id(create.experiment_id, 1)

    stopped = until(
        lambda: status_tap.status(bad, "stopped", "trainer"), 300, "bad run stopped", box
    )
    finished = until(
        lambda: status_tap.status(good, "finished", "trainer"), 300, "good run done", box
    )
    reason = stopped["early_stop"]
    assert reason["problem"] in ("nonfinite", "divergence", "dead_network"), stopped
    assert stopped["epoch"] <= EPOCHS // 2 and reason["saved_epochs"] == EPOCHS - stopped["epoch"]
    assert stopped["message"].startswith(
        f"stopped early after epoch {stopped['epoch']} of {EPOCHS}: "
    )
    assert reason["title"] in stopped["message"]
    assert sorted(epochs_of(epoch_tap, bad)) == list(range(1, stopped["epoch"] + 1))
    assert finished["epoch"] == EPOCHS and "accuracy=" in finished["message"]
    assert sorted(epochs_of(epoch_tap, good)) == list(range(1, EPOCHS + 1)), (
        "the best run is unaffected"
    )
    assert not status_tap.status(bad, "stopped", "orchestrator"), "the trainer's reason stays"

    sql = "SELECT status, epoch, message, early_stop FROM nnt_simulation WHERE id = %s"
    row = until(lambda: (r := rows(web_db_url, sql, bad)) and r[0][0] == "stopped" and r[0], 90,
                "the stop in PostgreSQL", box)  # fmt: skip
    assert row[2] == stopped["message"] and row[3]["problem"] == reason["problem"]
    until(lambda: rows(web_db_url, sql, good)[0][0] == "finished" or None, 90, "good row", box)
    assert rows(web_db_url, sql, good)[0][3] is None

    from django.test import Client as WebClient

    web = WebClient()
    web.force_login(user)
    body = web.get(f"/api/experiments/{create.experiment_id}").json()
    saved = EPOCHS - stopped["epoch"]
    assert body["statuses"] == {"stopped": 1, "finished": 1}
    early = body["early_stop"]
    assert (early["enabled"], early["runs"], early["saved_epochs"], early["total_epochs"]) == (
        True, 1, saved, 2 * EPOCHS,
    )  # fmt: skip
    assert early["summary"] == (
        f"Early stopping ended 1 run, saving {saved} of {2 * EPOCHS} epochs "
        f"({round(100 * saved / (2 * EPOCHS), 1):g} %)"
    )
    (item,) = early["stopped"]
    assert item["simulation_id"] == str(bad) and item["problem"] == reason["problem"]
    page = web.get(f"/simulations/?experiment={create.experiment_id}").content.decode()
    assert early["summary"] in page
    run = web.get(f"/api/simulations/{bad}").json()
    assert run["status"] == "stopped" and run["early_stop"]["problem"] == reason["problem"]
    assert run["early_stop"]["saved_epochs"] == saved
    assert web.get(f"/api/simulations/{good}").json()["early_stop"] is None
