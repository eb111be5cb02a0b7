"""HEALTHCHECK of the production images: `python healthcheck.py web|stream|orchestrator`.

Each probe checks what the component is for, from inside its own container:
- web: daphne answers Django's home page with 200 on the configured port and host name;
- stream: this container is a live member of the Faust consumer group (it consumes);
- orchestrator: this host's orchestrator is a live member of the shared command group.

The orchestrator is matched by its client id, which names its host (NNT_HOSTNAME, unique
by design). Faust workers share one client id, so a stream worker is matched by the address
the broker sees: the local address routed to the bootstrap server (no NAT in between: the
workers run on the broker's network).
Exit status 0 is healthy, 1 is not; the reason goes to stdout (`docker inspect` shows it).
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

# Every image with a probe holds schemas beside its component (infra/docker/Dockerfile).
from schemas.topics import STREAM_GROUP

if TYPE_CHECKING:
    from schemas.kafkaauth import KafkaSecurity

TIMEOUT_S = 5.0


def web() -> str | None:
    """None when daphne serves the home page; otherwise why not.

    Reads the web's own variables (web/config.py; infra never imports web): the port and
    the first allowed host name, which Django requires in the Host header.
    """
    port = int(os.environ.get("NNT_WEB_PORT", "8000"))
    hosts = [h.strip() for h in os.environ.get("NNT_ALLOWED_HOSTS", "localhost").split(",")]
    host = hosts[0].lstrip(".") if hosts and hosts[0] not in ("", "*") else "localhost"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        # As the TLS proxy would say, so NNT_HTTPS=true answers the page, not a redirect.
        conn.request("GET", "/", headers={"Host": host, "X-Forwarded-Proto": "https"})
        status = conn.getresponse().status
    finally:
        conn.close()
    return None if status == 200 else f"GET http://{host}:{port}/ answered {status}"


def local_address(bootstrap: str) -> str:
    """The address this container connects to the broker from (what the broker sees)."""
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    family, _, _, _, addr = socket.getaddrinfo(host.strip("[]"), int(port))[0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(addr)  # UDP: no packet is sent, only the route is chosen
        return str(probe.getsockname()[0])


def member_of(
    bootstrap: str,
    security: KafkaSecurity,
    group: str,
    address: str | None = None,
    client_id: str | None = None,
) -> str | None:
    """None when `group` has a member with this address and client id (None: any); asked
    with the probed component's own credentials."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "log_level": 0, **security.confluent_config()}
    )
    future = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group]
    members = future.result(timeout=TIMEOUT_S * 2).members
    for member in members:
        if address in (None, member.host.lstrip("/")) and client_id in (None, member.client_id):
            return None
    seen = ", ".join(f"{m.client_id}@{m.host.lstrip('/')}" for m in members) or "none"
    wanted = "@".join(w for w in (client_id, address) if w)
    return f"group {group} has no member {wanted} (members: {seen})"


def stream() -> str | None:
    """None when this stream worker is a member of the Faust group."""
    from stream_processors.settings import load

    s = load()
    bootstrap = s.nnt_kafka_bootstrap
    return member_of(bootstrap, s, STREAM_GROUP, local_address(bootstrap))


def orchestrator() -> str | None:
    """None when this host's orchestrator is a member of the shared command group."""
    from orchestrator.settings import load

    s = load()
    client_id = f"nnt-orchestrator-{s.nnt_hostname}"  # orchestrator/consumer.py
    return member_of(s.nnt_kafka_bootstrap, s, s.nnt_orchestrator_group, client_id=client_id)


PROBES: dict[str, Callable[[], str | None]] = {
    "web": web,
    "stream": stream,
    "orchestrator": orchestrator,
}


def main(argv: list[str]) -> int:
    """Run one probe; 0 healthy, 1 unhealthy, 2 usage."""
    if len(argv) != 1 or argv[0] not in PROBES:
        print(f"usage: healthcheck.py {'|'.join(PROBES)}", file=sys.stderr)
        return 2
    try:
        problem = PROBES[argv[0]]()
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", with its reason
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        print(f"{argv[0]} unhealthy: {problem}")
        return 1
    print(f"{argv[0]} healthy ({os.uname().nodename})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
