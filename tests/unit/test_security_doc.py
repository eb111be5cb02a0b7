"""docs/security.md names, for each defence, the test that proves it: every name must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def references() -> list[tuple[str, str]]:
    """(test file, test function) for every `file::test` in the doc; `::test` reuses the last
    file and `…/name.py` is found by its (unique) basename."""
    text = (ROOT / "docs" / "security.md").read_text()
    found, current = [], ""
    for ref in re.findall(r"`([^`\s]*::[^`\s]+)`", text):
        where, _, name = ref.partition("::")
        if not name.startswith("test_"):
            continue  # a code reference, such as `trainer/publisher.py::KafkaPublisher`
        if where.startswith("…/"):
            [path] = TESTS.rglob(where.removeprefix("…/"))
            current = str(path.relative_to(TESTS))
        elif where:
            current = where
        found.append((current, name.removesuffix("[...]")))
    return found


def test_every_test_the_security_doc_names_exists() -> None:
    refs = references()
    assert len(refs) > 60
    missing = [
        f"{file}::{name}"
        for file, name in refs
        if not (TESTS / file).is_file()
        or not re.search(rf"^def {name}\(", (TESTS / file).read_text(), re.M)
    ]
    assert missing == []
