"""The web server's body cap (web.server.CappedRequest), on Twisted's HTTP channel with an
in-memory transport: a body over its cap is answered 413 and none of it is kept."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web import http

from web import server
from web.simulations.uploads import Limit

CAP = 1000


class FakeServer:
    """What daphne's request asks of its server, recording what reached the application."""

    server_name = "test"
    proxy_forwarded_address_header = None
    root_path = ""
    request_buffer_size = 8192

    def __init__(self) -> None:
        self.applications: list[dict[str, Any]] = []

    def protocol_connected(self, protocol: Any) -> None:
        pass

    def protocol_disconnected(self, protocol: Any) -> None:
        pass

    def log_action(self, *args: Any) -> None:
        pass

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        self.applications.append(scope)
        return None  # "abandoned": nothing more is sent to it


@pytest.fixture()
def wire(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A channel building CappedRequest, its transport, the fake server and the clock."""
    monkeypatch.setattr(server.uploads, "body_cap", lambda path: Limit(CAP, "NNT_TEST_CAP"))
    monkeypatch.setattr(
        server.uploads, "body_refusal", lambda path, n, at_least=False: ("text/plain", b"too big")
    )
    clock = Clock()
    monkeypatch.setattr(server.CappedRequest, "clock", clock)
    fake = FakeServer()
    channel = http.HTTPChannel()
    channel.requestFactory = server.CappedRequest
    channel.factory = SimpleNamespace(server=fake, log=lambda request: None)
    transport = StringTransport()
    channel.makeConnection(transport)
    return SimpleNamespace(
        send=channel.dataReceived, transport=transport, server=fake, clock=clock, channel=channel
    )


def _head(length: int | None, expect: bool = False, path: str = "/api/experiments") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: testserver", "Content-Type: text/plain"]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    if expect:
        lines.append("Expect: 100-continue")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_it_answers_413_before_the_body_when_the_client_waits_for_a_go_ahead(wire: Any) -> None:
    send, transport, fake = wire.send, wire.transport, wire.server
    send(_head(CAP + 1, expect=True))
    answer = transport.value()
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert answer.endswith(b"too big") and b"100 Continue" not in answer
    assert transport.disconnecting
    assert fake.applications == [], "the request reached Django"


def test_it_drops_a_declared_body_over_the_cap_then_answers_413(wire: Any) -> None:
    send, transport, fake = wire.send, wire.transport, wire.server
    send(_head(CAP * 5))
    request = wire.channel.requests[0]
    for _ in range(4):
        send(b"x" * CAP)
        assert request.content.tell() == 0, "part of the refused body was kept"
    assert transport.value() == b"", "answered while the client still sends"
    send(b"x" * CAP)
    answer = transport.value()
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert answer.endswith(b"too big")
    assert fake.applications == []


def test_it_cuts_a_chunked_body_when_it_passes_the_cap(wire: Any) -> None:
    send, transport, fake = wire.send, wire.transport, wire.server
    send(_head(None))
    request = wire.channel.requests[0]
    send(b"%x\r\n%s\r\n" % (CAP - 10, b"a" * (CAP - 10)))
    assert request.content.tell() == CAP - 10  # within the cap: kept
    send(b"%x\r\n%s\r\n" % (100, b"b" * 100))
    assert request.content.tell() == 0, "the body past the cap was kept"
    send(b"%x\r\n%s\r\n" % (100, b"c" * 100))
    assert request.content.tell() == 0, "the body past the cap was kept"
    send(b"0\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 413 ")
    assert fake.applications == []


def test_it_stops_reading_a_refused_body_after_the_linger_time(wire: Any) -> None:
    send, transport, clock = wire.send, wire.transport, wire.clock
    send(_head(CAP * 1000))
    send(b"x" * CAP)
    clock.advance(server.LINGER_S + 1)
    assert transport.disconnecting or transport.disconnected


def test_it_passes_a_body_within_the_cap_on_without_parsing_it(wire: Any) -> None:
    send, transport, fake = wire.send, wire.transport, wire.server
    body = b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--\r\n"
    head = _head(len(body)).replace(b"text/plain", b"multipart/form-data; boundary=b")
    send(head + body)
    assert [scope["path"] for scope in fake.applications] == ["/api/experiments"]
    assert transport.value() == b"", "nothing answered: the application has the request"
    assert wire.channel.requests[0].args == {}, "Twisted parsed the multipart body"
