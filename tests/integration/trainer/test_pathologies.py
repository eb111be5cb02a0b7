"""The pathology suite's CI subset: broken set-ups are diagnosed with their problem, healthy
ones get no diagnosis at all (bench/pathologies.py holds the catalogue; `make bench` runs all
of it and reports recall, precision and the epochs of first detection).

Each set-up trains a small Keras model on offline data with the real TrackerCallback. No
service is needed; it lives with the integration tests for its minute of CPU.
"""

from __future__ import annotations

import pytest

from bench.pathologies import SETUPS, Setup, run_setup

pytestmark = pytest.mark.integration

CI = [s for s in SETUPS if s.ci]


def test_the_subset_covers_each_kind_of_problem_and_healthy_runs() -> None:
    kinds = {s.expect[0] for s in CI if s.expect}
    assert {"vanishing_gradients", "dead_network", "divergence", "slow_convergence"} <= kinds
    assert {"saturation", "overfitting", "output_mismatch", "oscillation"} <= kinds
    assert sum(s.healthy for s in CI) >= 3


@pytest.mark.parametrize("setup", CI, ids=[s.name for s in CI])
def test_each_setup_gets_its_diagnosis_and_no_other(setup: Setup) -> None:
    outcome = run_setup(setup)
    if setup.healthy:
        assert outcome.reported == {}, f"{setup.what}: false alarm {outcome.reported}"
    else:
        assert outcome.detected, f"{setup.what}: expected {setup.expect}, got {outcome.reported}"
        assert outcome.false_alarms == [], f"{setup.what}: also said {outcome.false_alarms}"
