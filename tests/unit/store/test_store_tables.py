"""The tables the stream workers write (store.tables) are the tables store/sql creates: the
same columns with the same types, so a binary COPY never sends what the schema refuses."""

from __future__ import annotations

import re

import pytest

from store import schema, tables
from stream_processors import rows

pytestmark = pytest.mark.unit

WRITTEN = (
    tables.EPOCH_METRIC,
    tables.BATCH_METRIC,
    tables.TENSOR,
    tables.STATUS_EVENT,
    tables.RESOURCE,
    tables.TAG_AGGREGATE,
    tables.EVIDENCE,
)
# PostgreSQL's names in the CREATE TABLE statements for the names a binary COPY sends.
SPELLED = {
    "integer": "int4",
    "bigint": "int8",
    "double precision": "float8",
    "boolean": "bool",
    "integer[]": "int4[]",
}
COLUMN = re.compile(r"^\s+(\w+)\s+(double precision|\w+(?:\[\])?)")


def created_columns(name: str) -> dict[str, str]:
    """Column -> type of one CREATE TABLE statement of store/sql/timeseries.sql."""
    text = schema.SQL.read_text()
    found = re.search(rf"CREATE TABLE IF NOT EXISTS {name} \((.*?)\n\)", text, re.S)
    assert found, f"store/sql/timeseries.sql creates no {name}"
    out = {}
    for line in found[1].splitlines():
        column = COLUMN.match(line)
        if column and column[1] != "PRIMARY":
            out[column[1]] = SPELLED.get(column[2], column[2])
    return out


@pytest.mark.parametrize("table", WRITTEN, ids=lambda t: t.name)
def test_it_writes_the_columns_the_schema_creates(table: tables.Table) -> None:
    created = created_columns(table.name)
    written = dict(zip(table.columns, table.types, strict=True))
    assert {c: created.get(c) for c in written} == written


def test_it_creates_every_partitioned_table_and_its_timescale_part() -> None:
    assert set(tables.PARTITIONED) <= {t.name for t in WRITTEN}
    assert set(tables.PARTITIONED) == set(schema.HYPERTABLES)
    assert "CREATE OR REPLACE PROCEDURE nnt_drop_tensor_values" in schema.TIMESCALE_SQL.read_text()


def test_it_keeps_the_table_names_the_agents_use() -> None:
    # stream_processors.agents writes `rows.EPOCH_METRIC` and the others.
    named = (rows.EPOCH_METRIC, rows.BATCH_METRIC, rows.TENSOR, rows.STATUS_EVENT, rows.RESOURCE)
    named += (rows.TAG_AGGREGATE, rows.EVIDENCE)
    assert named == WRITTEN
