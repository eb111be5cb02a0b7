"""`nntracker wait`: one line per run, a failed run's reason included."""

from __future__ import annotations

import pytest

from client.progress import describe

pytestmark = pytest.mark.unit
SID = "0d7c4e6a-0000-4000-8000-000000000000"


def test_it_says_why_a_run_failed_with_its_one_line_message() -> None:
    sim = {
        "id": SID, "status": "failed", "epoch": 0, "total_epochs": 3,
        "message": "epoch 1 (validation), layer 'intensity': input value 16 is not a valid index",
        "error": "Traceback (most recent call last):\n  ...\nInvalidArgumentError: indices[5,7]",
    }  # fmt: skip
    assert describe(sim) == (
        "0d7c4e6a  failed    epoch 0/3  epoch 1 (validation), layer 'intensity': input value 16 "
        "is not a valid index"
    )


def test_it_falls_back_to_the_last_line_of_an_error_without_message() -> None:
    sim = {"id": SID, "status": "failed", "epoch": 2, "total_epochs": 4, "message": "",
           "error": "Traceback…\nValueError: NaN loss"}  # fmt: skip
    assert describe(sim) == "0d7c4e6a  failed    epoch 2/4  ValueError: NaN loss"
    running = {"id": SID, "status": "running", "epoch": 1, "total_epochs": 4, "message": "x"}
    assert describe(running) == "0d7c4e6a  running   epoch 1/4"
