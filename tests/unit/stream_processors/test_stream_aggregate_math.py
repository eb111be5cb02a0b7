"""Tag aggregates, downsampling rules and binary COPY rows: pure logic."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from schemas.epochs import EpochEvent
from schemas.tensors import TensorHeader
from store.sink import SinkError
from store.tables import COPY_SIGNATURE, COPY_TRAILER
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


def copied_rows(data: bytes) -> list[tuple[object, ...]]:
    """The rows of an nnt_epoch_metric binary COPY stream, parsed as PostgreSQL parses it."""
    assert data.startswith(COPY_SIGNATURE) and data.endswith(COPY_TRAILER)
    at0 = datetime(2000, 1, 1, tzinfo=UTC)
    out, pos = [], len(COPY_SIGNATURE)
    while pos < len(data) - len(COPY_TRAILER):
        (fields,) = struct.unpack_from(">h", data, pos)
        pos += 2
        values = []
        for _ in range(fields):
            (size,) = struct.unpack_from(">i", data, pos)
            values.append(data[pos + 4 : pos + 4 + size])
            pos += 4 + size
        sid, epoch, metric, value, at = values
        out.append(
            (
                uuid.UUID(bytes=sid),
                struct.unpack(">i", epoch)[0],
                metric.decode(),
                struct.unpack(">d", value)[0],
                at0 + timedelta(microseconds=struct.unpack(">q", at)[0]),
            )
        )
    return out


def test_it_writes_epoch_rows_in_binary_copy_format() -> None:
    sid = uuid.uuid4()
    aware = EpochEvent(
        simulation_id=sid,
        epoch=2,
        total_epochs=5,
        learning_rate=0.01,
        metrics={"a\tb": 0.1, "nan": None, "é": -1e-300},
        at=datetime(2026, 12, 5, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
    )
    naive = EpochEvent(  # a time without zone is UTC, as everywhere in the workers
        simulation_id=sid, epoch=3, total_epochs=5, metrics={}, learning_rate=0.5,
        at=datetime(2026, 12, 5, 9, 0, 0, 1),
    )  # fmt: skip
    encoded = rows.epoch_copy([aware, naive])
    assert encoded.rows == 4
    assert copied_rows(encoded.data) == [
        (sid, 2, "a\tb", 0.1, aware.at),
        (sid, 2, "é", -1e-300, aware.at),
        (sid, 2, "learning_rate", 0.01, aware.at),
        (sid, 3, "learning_rate", 0.5, naive.at.replace(tzinfo=UTC)),
    ]
    assert rows.epoch_copy([]).data == COPY_SIGNATURE + COPY_TRAILER


def test_an_epoch_the_table_cannot_hold_is_refused_as_content() -> None:
    event = EpochEvent(simulation_id=uuid.uuid4(), epoch=2**31, total_epochs=0, metrics={"a": 1})
    with pytest.raises(SinkError, match="cannot be stored"):
        rows.epoch_copy([event])


def test_it_throttles_tag_updates_per_tag() -> None:
    throttle = KeyedThrottle(0.1)
    throttle.add("t", {("loss", 1): 1})
    throttle.add("t", {("loss", 1): 2, ("acc", 1): 3})
    assert throttle.due(5.0) == [("t", [3, 2])]
    throttle.add("t", {("loss", 2): 4})
    assert throttle.due(5.05) == [] and throttle.pending() == 1
    assert throttle.due(5.2) == [("t", [4])]
