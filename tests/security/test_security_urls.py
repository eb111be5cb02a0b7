"""Hostile dataset URLs: internal addresses in every notation, schemes, redirects, bombs.

The guard (`orchestrator.fetch.check`) is tested directly for each URL: IP literals resolve
without a network, and host names are answered by a stubbed resolver. Redirects, size and time
caps run against a throwaway HTTP server on 127.0.0.1 (the test-only switch lets exactly that
address through). Every refusal names the URL and the reason, and leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.experiments import resolve_dataset
from orchestrator.fetch import FetchError, check, fetch, refusal
from orchestrator.settings import OrchestratorError, OrchestratorSettings

# (id, URL, regex of the reason) — each refused before any connection is made.
LITERALS: list[tuple[str, str, str]] = [
    ("loopback", "http://127.0.0.1/data.csv", r"127\.0\.0\.1, a loopback address"),
    ("loopback-other", "http://127.0.0.2/", "loopback"),
    ("localhost-name", "http://localhost/data.csv", "loopback"),
    ("loopback-ipv6", "http://[::1]/", "loopback"),
    ("uppercase-scheme", "HTTP://127.0.0.1/", "loopback"),
    ("metadata", "http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
    ("metadata-ipv6", "http://[fd00:ec2::254]/", "cloud metadata address"),
    ("metadata-decimal", "http://2852039166/", "169.254.169.254, a cloud metadata"),
    ("metadata-octal", "http://0251.0376.0251.0376/", "169.254.169.254, a cloud metadata"),
    ("metadata-hex", "http://0xa9fea9fe/", "169.254.169.254, a cloud metadata"),
    ("metadata-ipv6-mapped", "http://[::ffff:a9fe:a9fe]/", "carrying 169.254.169.254"),
    ("metadata-nat64", "http://[64:ff9b::a9fe:a9fe]/", "carrying 169.254.169.254"),
    ("link-local", "http://169.254.10.1/", "link-local"),
    ("link-local-ipv6", "http://[fe80::1]/", "link-local"),
    ("private-10", "http://10.1.2.3/", "private"),
    ("private-172-16", "http://172.16.0.1/", "private"),
    ("private-172-31", "http://172.31.255.255/", "private"),
    ("private-192-168", "http://192.168.0.1/", "private"),
    ("private-short-form", "http://10.1/", r"10\.0\.0\.1, a private"),
    ("private-decimal", "http://167772161/", r"10\.0\.0\.1, a private"),
    ("unique-local-ipv6", "http://[fc00::1]/", "private"),
    ("carrier-grade-nat", "http://100.64.0.1/", "non-global"),
    ("benchmark-range", "http://198.18.0.1/", "private|non-global"),
    ("loopback-decimal", "http://2130706433/", r"127\.0\.0\.1, a loopback"),
    ("loopback-octal", "http://0177.0.0.1/", "loopback"),
    ("loopback-hex", "http://0x7f000001/", "loopback"),
    ("loopback-hex-short", "http://0x7f.1/", "loopback"),
    ("loopback-short-form", "http://127.1/", "loopback"),
    ("loopback-fullwidth-digits", "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "loopback"),
    ("loopback-ipv6-mapped", "http://[::ffff:127.0.0.1]/", "carrying 127.0.0.1"),
    ("loopback-ipv6-mapped-hex", "http://[::ffff:7f00:1]/", "carrying 127.0.0.1"),
    ("loopback-ipv6-mapped-long", "http://[0:0:0:0:0:ffff:127.0.0.1]/", "carrying 127.0.0.1"),
    ("loopback-ipv4-compatible", "http://[::7f00:1]/", "carrying 127.0.0.1"),
    ("loopback-6to4", "http://[2002:7f00:1::]/", "carrying 127.0.0.1"),
    ("private-ipv6-mapped", "http://[::ffff:10.0.0.1]/", "carrying 10.0.0.1"),
    ("teredo-documentation", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "carrying 192"),
    ("unspecified", "http://0.0.0.0/", "unspecified"),
    ("unspecified-zero", "http://0/", "unspecified"),
    ("unspecified-ipv6", "http://[::]/", "unspecified"),
    ("multicast", "http://224.0.0.1/", "multicast"),
    ("broadcast", "http://255.255.255.255/", "private|reserved|non-global"),
    ("file-scheme", "file:///etc/passwd", "only http and https are allowed"),
    ("ftp-scheme", "ftp://example.org/x.csv", "only http and https"),
    ("gopher-scheme", "gopher://127.0.0.1:6379/_FLUSHALL", "only http and https"),
    ("dict-scheme", "dict://127.0.0.1:11211/stat", "only http and https"),
    ("jar-scheme", "jar:http://example.org/x.jar!/", "only http and https"),
    ("data-scheme", "data:text/csv,a%2Cb", "only http and https"),
    ("scheme-relative", "//127.0.0.1/x.csv", "only http and https"),
    ("no-host", "http:///x.csv", "no host"),
    ("credentials", "http://user:secret@example.org/x.csv", "credentials in URLs"),
    ("userinfo-confusion", "http://example.org@127.0.0.1/x.csv", "credentials in URLs"),
    ("userinfo-port-confusion", "http://127.0.0.1:80@evil.example/", "credentials in URLs"),
    ("port-out-of-range", "http://example.org:99999/", "Port out of range"),
    ("trailing-dot-literal", "http://127.0.0.1./", "loopback|cannot resolve"),
]


@pytest.mark.parametrize(("url", "why"), [c[1:] for c in LITERALS], ids=[c[0] for c in LITERALS])
def test_it_refuses_internal_addresses_in_any_notation(
    url: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_connection(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the guard let the URL through to a connection")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    with pytest.raises(FetchError, match=why) as caught:
        check(url)
    assert str(caught.value).startswith(f"dataset URL {url!r}: "), "the message names the URL"


def _resolver(answers: dict[str, list[str]]) -> Callable[..., list[Any]]:
    """A getaddrinfo that answers host names from `answers` (in order) and nothing else."""
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        out = []
        for address in answers[host]:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            out.append((family, socket.SOCK_STREAM, 6, "", (address, port)))
        return out

    return getaddrinfo


NAMES: list[tuple[str, list[str], str]] = [
    ("name-to-loopback", ["127.0.0.1"], "loopback"),
    ("name-to-metadata", ["169.254.169.254"], "cloud metadata"),
    ("name-to-private", ["192.168.1.20"], "private"),
    ("name-to-mapped", ["::ffff:10.0.0.7"], "carrying 10.0.0.7"),
    ("name-one-public-one-private", ["93.184.216.34", "10.0.0.1"], r"10\.0\.0\.1, a private"),
    ("name-link-local-with-zone", ["fe80::1%eth0"], "link-local"),
]


@pytest.mark.parametrize(("answers", "why"), [c[1:] for c in NAMES], ids=[c[0] for c in NAMES])
def test_it_refuses_host_names_that_resolve_to_internal_addresses(
    answers: list[str], why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _resolver({"data.evil.example": answers}))
    with pytest.raises(FetchError, match=rf"data\.evil\.example resolves to .*{why}"):
        check("https://data.evil.example/train.csv")


def test_it_connects_to_the_address_it_checked_not_a_second_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DNS rebinding: the second lookup would say 127.0.0.1; the connection never asks it."""
    calls = {"n": 0}

    def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        calls["n"] += 1
        address = "93.184.216.34" if calls["n"] == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    dialled: list[Any] = []

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        dialled.append(address)
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    with pytest.raises(FetchError, match="ConnectionRefusedError"):
        fetch("http://rebind.evil.example/x.csv", tmp_path, 10**6, timeout=1)
    assert dialled == [("93.184.216.34", 80)]
    assert not list(tmp_path.iterdir())


REFS: list[tuple[str, str, str]] = [
    ("file-url", "file:///etc/passwd", r"use an upload \(stored:<sha256>\.<ext>\) or an http"),
    ("absolute-path", "/etc/passwd", "use an upload"),
    ("relative-path", "../../runs/other/run.json", "use an upload"),
    ("stored-traversal", "stored:../../secret_key", "use an upload"),
    ("stored-bad-digest", "stored:abc.csv", "use an upload"),
    ("stored-missing", "stored:" + "0" * 64 + ".csv", "is not in the store; upload it again"),
    ("s3-scheme", "s3://bucket/key.csv", "use an upload"),
]


@pytest.mark.parametrize(("ref", "why"), [c[1:] for c in REFS], ids=[c[0] for c in REFS])
def test_it_refuses_dataset_references_that_are_not_uploads_or_web_urls(
    ref: str, why: str, tmp_path: Path
) -> None:
    settings = OrchestratorSettings(nnt_home=tmp_path)
    with pytest.raises(OrchestratorError, match=why):
        resolve_dataset(ref, settings)


# --- against a real HTTP server on 127.0.0.1 ---------------------------------------------

BODY = b"a,label\n1,0\n" * 50


def _serve(conn: socket.socket, path: str) -> None:
    """Answer one request on a raw socket, so that headers and timing are ours to choose."""
    if path.startswith("/to?u="):
        head = f"HTTP/1.1 302 Found\r\nLocation: {path.split('=', 1)[1]}\r\n"
        conn.sendall(head.encode() + b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    elif path == "/endless.csv":  # no Content-Length: the size is known only by reading
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        chunk = b"1,0\n" * 16384
        while True:
            conn.sendall(chunk)
    elif path == "/trickle.csv":  # one byte at a time, each well inside the socket timeout
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for _ in range(100):
            conn.sendall(b"1")
            time.sleep(0.1)
    else:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode() + BODY)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """http://127.0.0.1:<port> serving BODY, redirects (/to?u=URL) and hostile bodies."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                request = conn.recv(65536).decode("latin-1")
                _serve(conn, request.split(" ")[1] if " " in request else "/")
            except OSError:
                pass  # the client hung up, as it should on a refusal

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


@pytest.fixture()
def store(server: str, tmp_path: Path) -> Path:
    """A dataset store that already holds one download, which no refusal may touch."""
    root = tmp_path / "datasets"
    stored = fetch(f"{server}/data.csv", root, 10**6, allow_loopback=True)
    assert stored.name == f"{hashlib.sha256(BODY).hexdigest()}.csv"
    return root


def _unchanged(root: Path) -> None:
    [only] = list(root.iterdir())  # no temporary .fetch- file left behind
    assert only.read_bytes() == BODY


REDIRECTS: list[tuple[str, str, str]] = [
    ("to-file-scheme", "file:///etc/passwd", "only http and https"),
    ("to-private", "http://10.0.0.1/x.csv", "private"),
    ("to-metadata-decimal", "http://2852039166/latest/meta-data/", "cloud metadata"),
    ("to-ipv6-mapped-loopback", "http://[::ffff:127.0.0.2]/", "carrying 127.0.0.2"),
    ("to-gopher", "gopher://127.0.0.1:6379/_INFO", "only http and https"),
]


@pytest.mark.parametrize(
    ("target", "why"), [c[1:] for c in REDIRECTS], ids=[c[0] for c in REDIRECTS]
)
def test_it_refuses_redirects_to_internal_or_local_targets(
    server: str, store: Path, target: str, why: str
) -> None:
    with pytest.raises(FetchError, match=why):
        fetch(f"{server}/to?u={target}", store, 10**6, timeout=2, allow_loopback=True)
    _unchanged(store)


def test_it_stops_an_endless_download_at_the_size_cap(server: str, store: Path) -> None:
    with pytest.raises(FetchError, match=r"larger than NNT_MAX_DATASET_BYTES=2000000"):
        fetch(f"{server}/endless.csv", store, 2_000_000, timeout=5, allow_loopback=True)
    _unchanged(store)


def test_it_stops_a_trickling_download_at_the_time_cap(server: str, store: Path) -> None:
    """A server that sends one byte every 0.1 s never trips the socket timeout; the total
    download time must still be capped (NNT_FETCH_TOTAL_SECONDS)."""
    began = time.monotonic()
    with pytest.raises(FetchError, match=r"download took over 0\.5 s \(NNT_FETCH_TOTAL_SECONDS\)"):
        fetch(
            f"{server}/trickle.csv",
            store,
            10**6,
            timeout=5,
            allow_loopback=True,
            total_seconds=0.5,
        )
    assert time.monotonic() - began < 3, "the time cap waited for a whole read buffer"
    _unchanged(store)


def test_the_test_only_switch_opens_exactly_one_address() -> None:
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    with pytest.raises(FetchError, match="loopback"):
        check("http://127.0.0.2/x.csv", allow_loopback=True)
    with pytest.raises(FetchError, match="loopback"):
        check("http://[::1]/x.csv", allow_loopback=True)
