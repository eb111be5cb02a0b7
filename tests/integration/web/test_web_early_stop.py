"""Early stopping in the web: the form's checkbox into the configuration, and the compute saved
on the experiment's page and in GET /api/experiments/{id}."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.streamworker import find_command

MODEL = {"class_name": "Sequential", "config": {"name": "m", "layers": []}}
FATAL = ["nonfinite", "divergence", "dead_network"]


def _submit(client: Any, **fields: Any) -> Any:
    html = client.get("/experiments/new/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]
    data = {
        "mode": "form",
        "name": f"es-{uuid.uuid4().hex[:6]}",
        "batch_size": "16",
        "total_epochs": "40",
        "epoch_period": "1",
        "optimizer": ["SGD"],
        "loss_function": ["SparseCategoricalCrossentropy"],
        "learning_rate": ["0.05", "10"],
        "dataset_train_url": "https://example.org/train.npz",
        "model": SimpleUploadedFile("model.json", json.dumps(MODEL).encode()),
        "csrfmiddlewaretoken": token,
    }
    return client.post("/experiments/new/", data | fields)


def test_it_offers_the_early_stop_checkbox_off_with_its_patience(client: Any, user: Any) -> None:
    html = client.get("/experiments/new/").content.decode()
    box = re.search(r'<input type="checkbox" name="early_stop"[^>]*>', html)
    assert box and "checked" not in box[0]
    assert "Stop runs early on a fatal diagnosis" in html
    assert re.search(r'name="early_stop_patience" type="number" value="2"', html)


def test_it_puts_the_checked_box_and_patience_into_the_config_and_the_create_command(
    client: Any, user: Any, real_kafka: str
) -> None:
    from web.simulations.models import Experiment

    resp = _submit(client, early_stop="on", early_stop_patience="3")
    assert resp.status_code == 302, resp.content.decode()[:2000]
    experiment_id = resp["Location"].rsplit("=", 1)[1]
    config = Experiment.objects.get(pk=experiment_id).config
    assert config["early_stop"] == {"enabled": True, "on": FATAL, "patience": 3}
    command = find_command(real_kafka, experiment_id)
    assert command is not None and command.experiment["early_stop"]["patience"] == 3


def test_it_leaves_early_stop_off_when_unticked(client: Any, user: Any, real_kafka: str) -> None:
    from web.simulations.models import Experiment

    resp = _submit(client, early_stop_patience="5")
    assert resp.status_code == 302, resp.content.decode()[:2000]
    config = Experiment.objects.get(pk=resp["Location"].rsplit("=", 1)[1]).config
    assert config["early_stop"]["enabled"] is False


def test_it_shows_a_bad_patience_beside_its_field_and_keeps_the_box_ticked(
    client: Any, user: Any
) -> None:
    resp = _submit(client, early_stop="on", early_stop_patience="0")
    html = resp.content.decode()
    assert resp.status_code == 400
    field = html[html.index('data-field="early_stop_patience"') :][:800]
    assert "greater than or equal to 1" in field and 'value="0"' in field
    assert re.search(r'<input type="checkbox" name="early_stop" id="id_early_stop" checked', html)


def _experiment(owner: Any, stops: list[tuple[str, int, int, dict[str, Any] | None]]) -> Any:
    """An experiment of early-stopped runs: (status, epoch, total_epochs, early_stop) each."""
    from web.simulations.models import Experiment, Simulation

    exp = Experiment.objects.create(
        owner=owner,
        name=f"grid-{uuid.uuid4().hex[:6]}",
        config={"early_stop": {"enabled": True, "on": FATAL, "patience": 2}},
    )
    for i, (status, epoch, total, early) in enumerate(stops):
        Simulation.objects.create(
            experiment=exp,
            owner=owner,
            name=f"{exp.name} · {i}",
            index=i,
            status=status,
            epoch=epoch,
            total_epochs=total,
            early_stop=early,
        )
    return exp


def _stop(problem: str, epoch: int, total: int) -> dict[str, Any]:
    return {
        "problem": problem,
        "title": "Diverging loss",
        "summary": "loss 3.1e4 is 1200× its start since epoch 4",
        "epoch": epoch,
        "total_epochs": total,
        "saved_epochs": total - epoch,
        "test_metrics": {"accuracy": 0.1},
    }


def test_the_api_and_the_page_report_the_epochs_early_stopping_saved(
    client: Any, user: Any, make_user: Any
) -> None:
    exp = _experiment(
        user,
        [
            ("finished", 40, 40, None),
            ("stopped", 6, 40, _stop("divergence", 6, 40)),
            ("stopped", 4, 40, _stop("nonfinite", 4, 40)),
            ("stopped", 10, 40, None),  # stopped by its owner: saves nothing
            ("deleted", 2, 40, None),
        ],
    )
    body = client.get(f"/api/experiments/{exp.id}").json()
    assert body["simulations"] == 4 and body["statuses"] == {"finished": 1, "stopped": 3}
    early = body["early_stop"]
    assert (early["enabled"], early["patience"], early["on"]) == (True, 2, FATAL)
    assert (early["runs"], early["saved_epochs"], early["total_epochs"]) == (2, 70, 160)
    assert early["percent"] == 43.8
    assert early["summary"] == "Early stopping ended 2 runs, saving 70 of 160 epochs (43.8 %)"
    first = early["stopped"][0]
    assert (first["epoch"], first["saved_epochs"], first["problem"]) == (6, 34, "divergence")
    assert first["test_metrics"] == {"accuracy": 0.1}
    page = client.get(f"/simulations/?experiment={exp.id}").content.decode()
    assert 'id="early-stop-savings"' in page and early["summary"] in page

    other = make_user()
    client.force_login(other)
    assert client.get(f"/api/experiments/{exp.id}").status_code == 404
    assert (
        "Early stopping ended"
        not in client.get(f"/simulations/?experiment={exp.id}").content.decode()
    )
    client.force_login(make_user(staff=True))
    assert client.get(f"/api/experiments/{exp.id}").json()["early_stop"]["runs"] == 2


def test_an_experiment_without_early_stop_reports_nothing(client: Any, user: Any) -> None:
    from web.simulations.models import Experiment, Simulation

    exp = Experiment.objects.create(owner=user, name="plain", config={})
    Simulation.objects.create(experiment=exp, owner=user, status="finished", total_epochs=5)
    early = client.get(f"/api/experiments/{exp.id}").json()["early_stop"]
    assert (early["enabled"], early["runs"], early["summary"]) == (False, 0, "")
    assert (
        'id="early-stop-savings"'
        not in client.get(f"/simulations/?experiment={exp.id}").content.decode()
    )
    assert client.get(f"/api/experiments/{uuid.uuid4()}").status_code == 404
