"""schemas/epochs.py: the binary form of epoch events, and JSON still accepted."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import pytest

from schemas.codecs import dumps
from schemas.common import built
from schemas.epochs import MAGIC, EpochEvent, decode, encode

pytestmark = pytest.mark.unit


def event(**over: object) -> EpochEvent:
    fields: dict[str, object] = {
        "simulation_id": uuid.uuid4(),
        "epoch": 7,
        "total_epochs": 20,
        "metrics": {"loss": 0.25, "accuracy": 0.875, "val_loss": 1 / 3},
        "learning_rate": 1e-3,
        "epoch_time_s": 1.5,
        "samples_per_s": 40_000.0,
        "at": datetime(2026, 12, 5, 4, 30, 1, 123456, tzinfo=UTC),
    }
    return EpochEvent.model_validate(fields | over)


def test_it_round_trips_every_field_exactly_and_is_smaller_than_json() -> None:
    sent = event()
    raw = encode(sent)
    assert raw.startswith(MAGIC) and len(raw) < len(dumps(sent)) * 0.7
    got = decode(raw)
    assert got == sent and got.model_dump() == sent.model_dump()
    assert got.points() == sent.points()
    assert got.model_dump_json() == sent.model_dump_json()


def test_it_carries_batches_evidence_and_diagnoses_as_json_at_the_end() -> None:
    sent = event(batches=[{"step": 3, "metrics": {"loss": 0.5}}], diagnoses=[])
    got = decode(encode(sent))
    assert got == sent and got.batches[0].metrics == {"loss": 0.5} and got.diagnoses == []


def test_non_finite_and_missing_values_come_back_as_none() -> None:
    sent = event(metrics={"loss": math.nan, "acc": math.inf, "x": None, "y": 2.0},
                 learning_rate=None, samples_per_s=None)  # fmt: skip
    got = decode(encode(sent))
    assert got.metrics == {"loss": None, "acc": None, "x": None, "y": 2.0}
    assert got.learning_rate is None and got.samples_per_s is None
    assert got.points() == {"y": 2.0, "epoch_time_s": 1.5}


def test_an_event_without_metrics_and_a_naive_time_round_trip() -> None:
    sent = event(metrics={}, at=datetime(2026, 1, 2, 3, 4, 5))
    got = decode(encode(sent))
    assert got.metrics == {} and got.at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_metric_name_holding_nul_is_sent_as_json() -> None:
    sent = event(metrics={"a\x00b": 1.0, "c": 2.0})
    raw = encode(sent)
    assert raw.startswith(b"{") and decode(raw) == sent


def test_json_from_any_client_is_still_read_and_keeps_at_unset_when_missing() -> None:
    sent = event()
    assert decode(dumps(sent)) == sent
    bare = decode(b'{"simulation_id": "%s", "epoch": 1, "total_epochs": 2, "metrics": {}}'
                  % str(uuid.uuid4()).encode())  # fmt: skip
    assert "at" not in bare.model_fields_set  # the worker stamps it with the record's time


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:-1],  # truncated
        lambda raw: raw + b"x",  # trailing bytes
        lambda raw: raw[:10],  # header cut
        lambda raw: MAGIC,  # nothing but the magic
    ],
)
def test_damaged_binary_is_a_value_error_naming_the_form(mangle: object) -> None:
    raw = mangle(encode(event()))  # type: ignore[operator]
    with pytest.raises(ValueError, match="not a binary epoch event"):
        decode(raw)


def test_a_negative_epoch_is_refused() -> None:
    raw = bytearray(encode(event()))
    raw[19:23] = (-1).to_bytes(4, "little", signed=True)  # the epoch field
    with pytest.raises(ValueError, match="epoch -1"):
        decode(bytes(raw))


def test_bad_json_extras_are_refused_by_validation() -> None:
    raw = encode(event(diagnoses=[]))
    broken = raw.replace(b'"diagnoses":[]', b'"diagnoses":77')
    with pytest.raises(ValueError):
        decode(broken)


def test_the_fast_build_equals_pydantics_model_construct() -> None:
    """The hot path builds events past pydantic's model_construct: a pydantic upgrade that
    changes a model's inner attributes must fail here."""
    sent = event()
    fields = {name: getattr(sent, name) for name in EpochEvent.model_fields}
    fast, slow = built(EpochEvent, dict(fields)), EpochEvent.model_construct(**fields)
    assert fast == slow and fast.model_fields_set == slow.model_fields_set
    assert fast.__pydantic_private__ == slow.__pydantic_private__
    assert fast.model_dump() == slow.model_dump() and fast.points() == slow.points()
    fast.at = datetime(2027, 1, 1, tzinfo=UTC)  # the worker stamps events: still assignable
    assert fast.at.year == 2027


def test_the_fast_build_of_a_live_point_equals_model_construct() -> None:
    from schemas.live import LivePoint

    fields = {"epoch": 3, "values": {"loss": 0.5}, "at": datetime(2027, 1, 1, tzinfo=UTC)}
    fast, slow = built(LivePoint, dict(fields)), LivePoint.model_construct(**fields)
    assert fast == slow and fast.model_fields_set == slow.model_fields_set
    assert fast.__pydantic_private__ == slow.__pydantic_private__
    assert fast.model_dump_json() == slow.model_dump_json()
