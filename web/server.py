"""The web's daphne, with a cap on request bodies: one over its path's cap is refused with 413
as its headers arrive (or, without a length, as it passes the cap), and nothing of it is
buffered. Daphne otherwise keeps a whole body (in a temp file past 100 kB) before Django
sees a byte, and Twisted reads a whole multipart body into memory to parse form arguments
nobody uses; both are turned off here.
"""

from __future__ import annotations

import logging
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

from daphne.http_protocol import HTTPFactory, WebRequest

from web.simulations import uploads

log = logging.getLogger(__name__)
LINGER_S = 30.0  # how long the rest of a refused body is read (and dropped) before closing


class CappedRequest(WebRequest):
    """Daphne's request with the body cap of web.simulations.uploads.body_cap."""

    clock: Any = None  # the reactor; tests give a twisted.internet.task.Clock
    refused: tuple[str, bytes] | None = None
    received = 0
    cap = 0
    route = "/"
    answered = False
    _linger: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Twisted would read a whole multipart body into memory to fill `args`, which daphne
        # never reads.
        self._parsePOSTFormSubmission = False

    def gotLength(self, length: int | None) -> None:
        """Headers are in: refuse a declared length over the cap before any body arrives."""
        target = getattr(self.channel, "_path", b"/") or b"/"
        self.route = urlsplit(target.decode("latin-1")).path or "/"
        self.cap = uploads.body_cap(self.route).bytes
        if length is not None and length > self.cap:
            self._refuse(length, at_least=False)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        """Keep a chunk while the body is within its cap (a chunked body has no length)."""
        if self.refused is not None:
            return  # dropped
        self.received += len(data)
        if self.received > self.cap:
            self.content.close()
            self._refuse(self.received, at_least=True)
            return
        super().handleContentChunk(data)

    def _refuse(self, length: int, at_least: bool) -> None:
        self.refused = uploads.body_refusal(self.route, length, at_least)
        self.content = BytesIO()  # stays empty
        log.info("refused a %d-byte request body to %s (cap %d)", length, self.route, self.cap)
        expect = self.requestHeaders.getRawHeaders(b"expect") or [b""]
        if expect[0].lower() == b"100-continue":
            # The client waits for a go-ahead before sending the body: answer now, and no
            # byte of the body is ever sent.
            self.requestHeaders.removeHeader(b"expect")
            self._answer_now()
            return
        # Others send the body anyway: read and drop it (bounded in time), then answer, so
        # the client is still listening when the 413 comes.
        clock = self.clock or _reactor()
        self._linger = clock.callLater(LINGER_S, self._give_up)

    def _answer_now(self) -> None:
        self.answered = True
        content_type, body = self.refused or ("text/plain", b"")
        head = (
            "HTTP/1.1 413 Content Too Large\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.channel.transport.write(head.encode() + body)
        self.channel.transport.loseConnection()

    def _give_up(self) -> None:
        self._linger = None
        if self.channel is not None and self.channel.transport is not None:
            self.channel.transport.abortConnection()

    def process(self) -> Any:
        """The body is in: an accepted one goes to Django, a refused one gets its 413."""
        if self.refused is None:
            return super().process()
        if self.answered:
            return None
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        if hasattr(self.client, "host") and hasattr(self.client, "port"):
            self.client_addr = [str(self.client.host), self.client.port]
        channel = self.channel
        content_type, body = self.refused
        headers = [
            (b"Content-Type", content_type.encode()),
            (b"Content-Length", str(len(body)).encode()),
            (b"Connection", b"close"),
        ]
        self.handle_reply({"type": "http.response.start", "status": 413, "headers": headers})
        self.handle_reply({"type": "http.response.body", "body": body})
        if channel is not None and channel.transport is not None:
            channel.transport.loseConnection()
        return None

    def connectionLost(self, reason: Any) -> None:
        """Stop lingering on a refused body."""
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class CappedHTTPFactory(HTTPFactory):
    """Daphne's HTTP factory, building CappedRequest."""

    def buildProtocol(self, addr: Any) -> Any:
        """Daphne's protocol with our request class."""
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            protocol.requestFactory = CappedRequest
        return protocol


def install() -> None:
    """Make daphne, in this process, serve HTTP with CappedRequest."""
    from daphne import server

    server.HTTPFactory = CappedHTTPFactory  # type: ignore[misc]
