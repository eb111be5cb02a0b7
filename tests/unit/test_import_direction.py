"""The import direction of ../shared/DESIGN.md, checked on the source of every package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {
    "schemas",
    "store",
    "trainer",
    "orchestrator",
    "stream_processors",
    "web",
    "infra",
    "client",
}
FORBIDDEN = {
    "schemas": OURS - {"schemas"},
    "store": OURS - {"schemas", "store"} | {"django", "faust"},
    "trainer": {
        "django",
        "faust",
        "web",
        "stream_processors",
        "orchestrator",
        "infra",
        "channels",
        "ninja",
    },
    "orchestrator": {"web", "django", "faust"},
    "stream_processors": {"web", "django"},
    # the local stack never drives the users' client; the client reaches the stack only
    # for the commands that run it (`up`, `db`), and the servers only through their API
    "infra": {"web", "client"},
    "client": {"web", "django", "faust", "stream_processors", "orchestrator"},
}


def imported_roots(path: Path) -> set[str]:
    """Top-level module names a file imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_it_keeps_the_import_direction(package: str) -> None:
    offenders = {}
    for path in (ROOT / package).rglob("*.py"):
        bad = imported_roots(path) & FORBIDDEN[package]
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_it_finds_a_violation_when_there_is_one(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("import django\nfrom web.simulations import models\n")
    assert imported_roots(sample) >= {"django", "web"}


def test_it_keeps_the_configuration_page_current() -> None:
    from infra import configdoc

    assert configdoc.DOC.read_text() == configdoc.render(), "run `python -m infra.configdoc`"


def test_it_gives_every_test_module_a_unique_basename() -> None:
    # pytest's default import mode collides on equal basenames in folders without __init__.py.
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_it_never_imports_a_conftest_by_name() -> None:
    # `from conftest import x` resolves to whichever conftest pytest loaded last.
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("*.py")
        if p.resolve() != Path(__file__).resolve()
        and ("from conftest import" in p.read_text() or "import conftest" in p.read_text())
    ]
    assert offenders == []
