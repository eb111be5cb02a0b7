"""A missing event time comes from the Kafka record, so a redelivered message keeps its key;
schema errors are told apart from content errors."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from schemas.epochs import EpochEvent
from schemas.resources import ResourceSample
from schemas.status import StatusEvent
from schemas.tensors import TensorHeader, pack
from store.sink import is_schema_error
from stream_processors import decoding, rows

pytestmark = pytest.mark.unit

SID = uuid.UUID("11111111-2222-3333-4444-555555555555")
KAFKA_TS = 1_750_000_000.123  # what Faust gives: the record's CreateTime in seconds
AT = datetime.fromtimestamp(KAFKA_TS, UTC)


def test_it_takes_a_missing_at_from_the_record_so_a_redelivery_has_the_same_key() -> None:
    raw = json.dumps(
        {"simulation_id": str(SID), "epoch": 1, "total_epochs": 2, "metrics": {"loss": 0.5}}
    ).encode()
    parse = decoding.json_event(EpochEvent)
    first, again = parse(raw, KAFKA_TS), parse(raw, KAFKA_TS)
    assert first.at == again.at == AT
    assert rows.epoch_rows([first]) == rows.epoch_rows([again])


def test_it_keeps_the_senders_at_even_when_a_metric_is_named_at() -> None:
    sent = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    event = EpochEvent(simulation_id=SID, epoch=1, total_epochs=1, metrics={"at": 1.0}, at=sent)
    assert decoding.json_event(EpochEvent)(event.model_dump_json().encode(), KAFKA_TS).at == sent
    no_at = json.dumps(
        {"simulation_id": str(SID), "epoch": 1, "total_epochs": 1, "metrics": {"at": 1.0}}
    ).encode()
    assert decoding.json_event(EpochEvent)(no_at, KAFKA_TS).at == AT


def test_it_stamps_status_resources_and_tensor_headers_too() -> None:
    status = json.dumps({"simulation_id": str(SID), "status": "running"}).encode()
    sample = json.dumps({"simulation_id": str(SID), "cpu_percent": 1, "memory_bytes": 2}).encode()
    assert decoding.json_event(StatusEvent)(status, KAFKA_TS).at == AT
    assert decoding.json_event(ResourceSample)(sample, KAFKA_TS).at == AT
    head = TensorHeader(simulation_id=SID, epoch=1, layer_index=0, layer_name="d", kind="bias")
    doc = json.loads(head.model_dump_json(exclude_none=True))
    del doc["at"]
    body = json.dumps(doc).encode()
    raw = pack(head, b"xy")[:4] + len(body).to_bytes(4, "little") + body + b"xy"
    header, payload = decoding.tensor_chunk(raw, KAFKA_TS)
    assert (header.at, payload) == (AT, b"xy")


def test_it_falls_back_to_now_without_a_record_time() -> None:
    raw = json.dumps({"simulation_id": str(SID), "status": "running"}).encode()
    before = datetime.now(UTC)
    assert decoding.json_event(StatusEvent)(raw, None).at >= before
    assert decoding.record_time(-0.001) is None


def test_it_retries_schema_errors_and_dead_letters_content_errors() -> None:
    for schema in (
        psycopg.errors.UndefinedTable("relation does not exist"),
        psycopg.errors.InsufficientPrivilege("permission denied"),
        psycopg.errors.UndefinedColumn("column does not exist"),
        psycopg.errors.ReadOnlySqlTransaction("read-only"),
    ):
        assert is_schema_error(schema), schema
    for content in (
        psycopg.errors.NumericValueOutOfRange("out of range"),
        psycopg.errors.CharacterNotInRepertoire("0x00"),
        psycopg.errors.CheckViolation("check"),
    ):
        assert not is_schema_error(content), content
