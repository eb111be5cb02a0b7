"""Every SQL statement of the product lives in the store package (issue 18): the stream
workers, the web, the orchestrator, the trainer, the CLI and the local stack call typed
functions of `store/` and never spell a statement themselves.

A statement is a string literal that starts like one (SELECT, INSERT INTO, UPDATE … SET,
DELETE FROM, COPY, WITH … AS (, CREATE/ALTER/DROP TABLE…, TRUNCATE, LOCK TABLE), upper-case
as this code base writes SQL; prose in docstrings and messages does not start that way.
bench/ (its peers are raw SQL by design) and tests/ are not product code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("orchestrator", "stream_processors", "trainer", "web", "infra", "schemas")
STATEMENT = re.compile(
    r"^\s*(SELECT\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|COPY\s+\w+|"
    r"WITH\s+\w+\s+AS\s*\(|(CREATE|ALTER|DROP)\s+(TABLE|INDEX|VIEW|EXTENSION|MATERIALIZED|"
    r"SCHEMA|FUNCTION|DATABASE|ROLE|USER)\s|TRUNCATE\s|LOCK\s+TABLE\s|GRANT\s|REVOKE\s|VACUUM\s|ANALYZE\s)"
)


def statements(path: Path) -> list[tuple[int, str]]:
    """String literals of a module that are SQL statements, with their line."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if STATEMENT.match(node.value):
                found.append((node.lineno, node.value.strip().splitlines()[0][:80]))
        elif isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            if isinstance(head, ast.Constant) and STATEMENT.match(str(head.value)):
                found.append((node.lineno, str(head.value).strip().splitlines()[0][:80]))
    return found


def test_the_pattern_finds_statements_and_skips_prose() -> None:
    assert STATEMENT.match("SELECT 1")
    assert STATEMENT.match("\n    INSERT INTO nnt_x (a) VALUES (%s)")
    assert STATEMENT.match("WITH gone AS (DELETE FROM t RETURNING id) SELECT 1")
    assert STATEMENT.match("COPY nnt_epoch_metric (a) FROM STDIN")
    assert not STATEMENT.match("Select the runs to compare")
    assert not STATEMENT.match("select a learning rate")


def test_no_sql_outside_the_store_package() -> None:
    found = {
        str(path.relative_to(ROOT)): hits
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
        if (hits := statements(path))
    }
    assert found == {}, "SQL outside store/: move it into a store module\n" + "\n".join(
        f"{name}:{line}: {text}" for name, hits in found.items() for line, text in hits
    )
