"""Dataset URLs: fetched only from global addresses, redirects re-checked, size and time capped.

Every address a host name resolves to must be global (no loopback, private, link-local,
carrier-grade NAT, multicast, reserved, unspecified or metadata address, and no IPv4 hidden in
IPv6), in any notation the resolver accepts (decimal, octal, hex, short forms). The connection
goes to the very address that was checked, so DNS cannot change the answer in between.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import logging
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from orchestrator import datastore
from orchestrator.settings import OrchestratorError

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 1024 * 1024
TOTAL_SECONDS = 1800
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
BLOCKED = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "192.0.0.0/24",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "fd00:ec2::254/128",
        "fe80::/10",
        "fc00::/7",
        "ff00::/8",
    )
]


class FetchError(OrchestratorError):
    """A dataset URL that is refused or could not be downloaded; the text names the URL."""


@dataclass(frozen=True)
class Target:
    """One checked hop: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, Teredo, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address) or ip.is_loopback or ip.is_unspecified:
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    packed = int(ip)
    if ip in ipaddress.ip_network("64:ff9b::/96") or packed >> 32 == 0:
        return ipaddress.IPv4Address(packed & 0xFFFFFFFF)  # NAT64 and IPv4-compatible
    return None


def refusal(ip: IPAddress, allow_loopback: bool = False) -> str | None:
    """Why an address may not be fetched from, or None when it is global."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        reason = refusal(inner, allow_loopback)
        return f"IPv6 address carrying {inner}: {reason}" if reason else None
    if ip.is_loopback:
        # The test-only switch opens exactly 127.0.0.1, so tests can still see 127.0.0.2 refused.
        return None if allow_loopback and str(ip) == "127.0.0.1" else "loopback address"
    if str(ip) in ("169.254.169.254", "fd00:ec2::254"):
        return "cloud metadata address"
    for name in ("unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{name}"):
            return f"{name.replace('_', '-')} address"
    if any(ip in net for net in BLOCKED if net.version == ip.version):
        return "non-global address"
    return None if ip.is_global else "non-global address"


def check(url: str, allow_loopback: bool = False) -> Target:
    """Parse and resolve one URL; FetchError unless every resolved address is global."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"dataset URL {url!r}: only http and https are allowed")
    if parts.username or parts.password:
        raise FetchError(f"dataset URL {url!r}: credentials in URLs are not allowed")
    try:
        host, port = parts.hostname, parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise FetchError(f"dataset URL {url!r}: {exc}") from exc
    if not host:
        raise FetchError(f"dataset URL {url!r}: no host")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"dataset URL {url!r}: cannot resolve {host!r} ({exc})") from exc
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    for address in addresses:
        reason = refusal(ipaddress.ip_address(address), allow_loopback)
        if reason:
            raise FetchError(f"dataset URL {url!r}: {host} resolves to {address}, a {reason}")
    if not addresses:
        raise FetchError(f"dataset URL {url!r}: {host!r} has no address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path, addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to a checked address, with the original host in the Host header."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is verified against the host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self.address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def fetch(
    url: str,
    store_dir: Path,
    max_bytes: int,
    timeout: float = 30.0,
    allow_loopback: bool = False,
    total_seconds: float = TOTAL_SECONDS,
) -> Path:
    """Download a dataset into the content-addressed store; returns its stored path."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        target = check(current, allow_loopback)
        conn: http.client.HTTPConnection = (
            _PinnedHTTPS(target, timeout)
            if target.scheme == "https"
            else _PinnedHTTP(target, timeout)
        )
        try:
            conn.request("GET", target.path, headers={"User-Agent": "nntracker-orchestrator"})
            response = conn.getresponse()
            if response.status in REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise FetchError(f"dataset URL {current!r}: redirect without a Location")
                current = urljoin(current, location)
                log.info("dataset URL %s redirects to %s", url, current)
                continue
            if response.status != 200:
                raise FetchError(
                    f"dataset URL {current!r}: HTTP {response.status} {response.reason}"
                )
            return _save(response, url, current, store_dir, max_bytes, total_seconds)
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"dataset URL {current!r}: {type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
    raise FetchError(f"dataset URL {url!r}: more than {MAX_REDIRECTS} redirects")


def _save(
    response: http.client.HTTPResponse,
    url: str,
    final: str,
    store_dir: Path,
    max_bytes: int,
    total_seconds: float,
) -> Path:
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise FetchError(
            f"dataset URL {url!r}: {int(length)} bytes exceeds NNT_MAX_DATASET_BYTES={max_bytes}"
        )
    store_dir.mkdir(parents=True, exist_ok=True)
    digest, size, deadline = hashlib.sha256(), 0, time.monotonic() + total_seconds
    with tempfile.NamedTemporaryFile(dir=store_dir, prefix=".fetch-", delete=False) as out:
        tmp = Path(out.name)
        try:
            while chunk := response.read1(CHUNK):  # read1: a trickle cannot outlast the deadline
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(
                        f"dataset URL {url!r}: larger than NNT_MAX_DATASET_BYTES={max_bytes}"
                    )
                if time.monotonic() > deadline:
                    raise FetchError(
                        f"dataset URL {url!r}: download took over {total_seconds:g} s "
                        "(NNT_FETCH_TOTAL_SECONDS)"
                    )
                digest.update(chunk)
                out.write(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    ext = datastore.extension_of(urlsplit(url).path)
    if ext == "bin":
        ext = datastore.extension_of(urlsplit(final).path)
    path = datastore.add(store_dir, tmp, digest.hexdigest(), ext)
    log.info("dataset URL %s stored as %s (%d bytes)", url, path.name, size)
    return path
