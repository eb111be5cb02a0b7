"""The CLI's REST client without a server: the streamed multipart body and its error texts."""

from __future__ import annotations

import email.parser
import email.policy
import json
from pathlib import Path
from typing import Any

import pytest

from client import cli
from client.api import ApiClient, _describe
from infra.settings import InfraError


def _parse(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    return {
        part.get_param("name", header="content-disposition"): (
            part.get_filename(),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    }


def test_it_streams_a_multipart_body_that_parses_back_to_the_files(tmp_path: Path) -> None:
    model, train = tmp_path / "model.json", tmp_path / 'tr"ain.csv'
    model.write_text(json.dumps({"class_name": "Sequential"}))
    train.write_bytes(bytes(range(256)) * 1000)  # binary, several read chunks
    seen: list[int] = []
    body = ApiClient("http://x").upload_body({"name": "é"}, model, {"train": train}, seen.append)
    pieces = []
    while chunk := body.read(7_001):
        pieces.append(chunk)
    data = b"".join(pieces)
    assert len(data) == len(body) == sum(seen)
    parts = _parse(data, body.content_type)
    assert json.loads(parts["config"][1]) == {"name": "é"}
    assert parts["model"] == ("model.json", model.read_bytes())
    assert parts["dataset_train"] == ("tr%22ain.csv", train.read_bytes())


class FakeResponse:
    def __init__(self, status: int, body: Any = None, text: str = "") -> None:
        self.status_code, self._body, self.reason = status, body, "Reason"
        self.text = text or json.dumps(body)

    def json(self) -> Any:
        if self._body is None:
            raise ValueError("not json")
        return self._body


def test_it_names_each_field_and_the_fix_in_errors() -> None:
    text = _describe(FakeResponse(422, {"detail": "invalid", "errors": {"batch_size": "> 0"}}))
    assert (
        text
        == "HTTP 422: invalid\n  batch_size: > 0\n  fix: correct the fields above and run the command again"
    )
    assert "nntracker login USERNAME" in _describe(FakeResponse(401, {"detail": "Unauthorized"}))
    html = _describe(FakeResponse(404, text="<!doctype html><h1>Not Found</h1>"))
    assert "<" not in html and "nntracker ls" in html


@pytest.mark.parametrize("bad", ["nope", "1234", "3f2b9c1e-xxxx"])
def test_it_refuses_an_id_that_is_not_a_uuid(bad: str) -> None:
    with pytest.raises(InfraError, match=f"ID: '{bad}' is not a simulation id"):
        cli._ids([bad])
