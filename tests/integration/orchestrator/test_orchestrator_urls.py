"""The dataset URL guard against a real HTTP server on 127.0.0.1 that redirects."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.fetch import FetchError, fetch

BODY = b"x,y\n1,2\n" * 100


class Handler(BaseHTTPRequestHandler):
    """/data.csv serves BODY; /to?u=URL redirects there; /loop redirects to itself."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/to?u="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
        elif self.path == "/loop":
            self.send_response(301)
            self.send_header("Location", "/loop")
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_it_refuses_loopback_by_default(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="loopback"):
        fetch(f"{server}/data.csv", tmp_path, 10**6)
    assert not list(tmp_path.iterdir()), "nothing was downloaded"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://10.0.0.1/x.csv", "private"),
        ("http://192.168.1.1/x.csv", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://169.254.10.1/", "link-local"),
        ("http://100.64.0.1/", "non-global"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f.0.0.1/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "127.0.0.1"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.org/x", "only http and https"),
    ],
)
def test_it_refuses_non_global_addresses_in_any_notation(
    url: str, why: str, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match=why):
        fetch(url, tmp_path, 10**6, timeout=2)


@pytest.mark.parametrize(
    "target", ["http://127.0.0.2:{port}/data.csv", "http://[::1]:{port}/data.csv",
               "http://2130706434:{port}/data.csv", "http://169.254.169.254/"],
)  # fmt: skip
def test_it_rechecks_every_redirect(server: str, target: str, tmp_path: Path) -> None:
    """Only 127.0.0.1 is let through by the test-only switch: a redirect elsewhere is refused."""
    port = server.rsplit(":", 1)[1]
    with pytest.raises(FetchError, match="loopback|metadata"):
        fetch(f"{server}/to?u={target.format(port=port)}", tmp_path, 10**6, allow_loopback=True)


def test_it_stores_a_download_once_by_its_content(server: str, tmp_path: Path) -> None:
    first = fetch(f"{server}/to?u=/data.csv", tmp_path, 10**6, allow_loopback=True)
    again = fetch(f"{server}/data.csv", tmp_path, 10**6, allow_loopback=True)
    assert first == again == tmp_path / f"{hashlib.sha256(BODY).hexdigest()}.csv"
    assert first.read_bytes() == BODY and len(list(tmp_path.iterdir())) == 1


def test_it_caps_size_and_redirects(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="NNT_MAX_DATASET_BYTES"):
        fetch(f"{server}/data.csv", tmp_path, 100, allow_loopback=True)
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch(f"{server}/loop", tmp_path, 10**6, allow_loopback=True)
    assert not list(tmp_path.iterdir())
