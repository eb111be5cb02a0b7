"""Tag aggregates, downsampling rules and COPY text: pure logic."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from schemas.epochs import EpochEvent
from schemas.tensors import TensorHeader
from stream_processors import downsample, rows, tags
from stream_processors.throttle import KeyedThrottle

pytestmark = pytest.mark.unit


def test_it_aggregates_like_numpy_and_counts_each_simulation_once() -> None:
    values = {f"s{i}": float(v) for i, v in enumerate(np.random.default_rng(1).normal(size=7))}
    state: dict[str, tags.Aggregate] = {}
    points = [(sid, "loss", 3, v, 100.0) for sid, v in values.items()]
    assert len(tags.apply(state, "ada", "t", points)) == 1
    assert tags.apply(state, "ada", "t", points) == {}  # a replay changes nothing
    agg = state[tags.key("ada", "t", "loss", 3)]
    want = np.array(list(values.values()))
    assert agg.count == 7
    assert np.allclose(
        [agg.mean, agg.min, agg.max, agg.std], [want.mean(), want.min(), want.max(), want.std()]
    )
    again = tags.Aggregate.from_json(agg.to_json())
    assert again.to_json() == agg.to_json()


def test_it_lets_a_later_value_of_a_simulation_replace_its_earlier_one() -> None:
    agg = tags.Aggregate()
    agg.add("a", 1.0, 10.0)
    agg.add("b", 3.0, 10.0)
    assert not agg.add("a", 9.0, 5.0)  # older copy
    assert agg.add("a", 5.0, 20.0)  # re-run epoch after a resume
    assert (agg.count, agg.mean, agg.min, agg.max) == (2, 4.0, 3.0, 5.0)


def test_it_splits_keys_whatever_the_owner_and_tag_hold() -> None:
    assert tags.split_key(tags.key("a|b", "c|d", "val_loss", 12)) == ("a|b", "c|d", "val_loss", 12)
    assert tags.key("a|b", "c", "m", 1) != tags.key("a", "b|c", "m", 1)
    assert tags.group_key("a.b", "c") != tags.group_key("a", "b.c")


def test_it_groups_points_by_owner_and_every_tag_of_their_simulation() -> None:
    pts = [("s1", "loss", 1, 1.0, 0.0), ("s2", "loss", 1, 2.0, 0.0), ("s3", "loss", 1, 9.0, 0.0)]
    grouped = tags.by_tag(
        pts, {"s1": ("ada", ["x", "y"]), "s2": ("ada", ["y"]), "s3": ("bob", ["y"])}
    )
    assert grouped == {("ada", "x"): [pts[0]], ("ada", "y"): pts[:2], ("bob", "y"): [pts[2]]}
    assert tags.decode(tags.encode("ada", "y", pts)) == ("ada", "y", pts)
    with pytest.raises(ValueError):
        tags.decode(b"{}")
    with pytest.raises(ValueError):  # a message without owner belongs to nobody's group
        tags.decode(b'{"tag": "y", "points": []}')


def test_it_keeps_two_users_aggregates_of_the_same_tag_apart() -> None:
    state: dict[str, tags.Aggregate] = {}
    tags.apply(state, "ada", "cnn", [("a1", "loss", 1, 1.0, 0.0), ("a2", "loss", 1, 3.0, 0.0)])
    tags.apply(state, "bob", "cnn", [("b1", "loss", 1, 100.0, 0.0)])
    ada, bob = state[tags.key("ada", "cnn", "loss", 1)], state[tags.key("bob", "cnn", "loss", 1)]
    assert (ada.count, ada.mean, ada.max) == (2, 2.0, 3.0)
    assert (bob.count, bob.mean, bob.min) == (1, 100.0, 100.0)
    row = ada.row("ada", "cnn", "loss", 1, None)  # type: ignore[arg-type]
    assert row[:5] == ("ada", "cnn", "loss", 1, 2)


def test_it_keeps_full_tensors_of_every_nth_epoch_and_stats_always() -> None:
    head = TensorHeader(
        simulation_id=uuid.uuid4(),
        epoch=3,
        layer_index=0,
        layer_name="d",
        kind="kernel",
        shape=[4],
        chunks=2,
    )
    chunks = [(head, b"a"), (head.model_copy(update={"chunk": 1}), b"b")]
    assert [(h.chunk, p, r) for h, p, r in downsample.thin_at_sink(chunks, 3)] == [
        (0, b"a", False),
        (1, b"b", False),
    ]
    kept = downsample.thin_at_sink(chunks, 2)
    assert [(h.chunk, h.chunks, p, r) for h, p, r in kept] == [(0, 0, b"", True)]
    assert downsample.keeps_full(7, 1) and not downsample.keeps_full(7, 2)


def test_it_writes_epoch_rows_as_escaped_copy_text() -> None:
    sid = uuid.uuid4()
    event = EpochEvent(
        simulation_id=sid, epoch=2, total_epochs=5, metrics={"a\tb": 0.1, "nan": None}
    )
    text = rows.epoch_copy_text([event]).decode()
    assert text == f"{sid}\t2\ta\\tb\t0.1\t{event.at.isoformat()}\n"


def test_it_throttles_tag_updates_per_tag() -> None:
    throttle = KeyedThrottle(0.1)
    throttle.add("t", {("loss", 1): 1})
    throttle.add("t", {("loss", 1): 2, ("acc", 1): 3})
    assert throttle.due(5.0) == [("t", [3, 2])]
    throttle.add("t", {("loss", 2): 4})
    assert throttle.due(5.05) == [] and throttle.pending() == 1
    assert throttle.due(5.2) == [("t", [4])]
