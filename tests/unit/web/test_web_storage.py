"""Content-addressed dataset storage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from web.errors import Invalid
from web.simulations import storage


def test_it_stores_under_the_content_hash(tmp_path: Path) -> None:
    data = b"x,y\n1,2\n"
    ref = storage.store([data[:3], data[3:]], ".csv", tmp_path)
    digest = hashlib.sha256(data).hexdigest()
    assert ref == f"stored:{digest}.csv"
    assert (tmp_path / f"{digest}.csv").read_bytes() == data
    assert storage.store([data], ".csv", tmp_path) == ref
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{digest}.csv"]
    # Never world-readable: a run as another user gets the file's group when it starts
    # (orchestrator/identity.py), in a folder no other user of the host may enter.
    assert (tmp_path / f"{digest}.csv").stat().st_mode & 0o777 == 0o640
    assert tmp_path.stat().st_mode & 0o777 == 0o700


def test_it_takes_the_extension_from_the_upload_name() -> None:
    assert storage.extension("Train.NPZ", "dataset_train") == ".npz"
    assert storage.extension("data.pkl", "dataset_val") == ".pkl"


def test_it_names_the_field_of_a_bad_extension() -> None:
    with pytest.raises(Invalid) as caught:
        storage.extension("evil.exe", "dataset_test")
    assert "dataset_test" in caught.value.errors
    assert ".npz" in caught.value.errors["dataset_test"]
