#!/usr/bin/env bash
# Local container engine for the docker runtime and its tests: podman serving the Docker API.
#
# Idempotent; every step is skipped when already done. Needs root (apt-get, /etc, /run).
#   1. apt-get install podman runc catatonit netavark aardvark-dns iptables (only what is missing)
#   2. /etc/containers/containers.conf: runtime runc (crun fails on hybrid cgroups here), the
#      netavark network backend (DNS on internal networks) and
#      default ulimits at or below this host's hard limits (raising them is forbidden here)
#   3. `podman system service` on $NNT_PODMAN_SOCKET unless it already answers
# The images, the trainer's included, are built by `make images` (python -m infra.images).
# Prints `DOCKER_HOST=unix://...` as its last line.
set -euo pipefail

SOCKET="${NNT_PODMAN_SOCKET:-/run/podman/podman.sock}"
CONF=/etc/containers/containers.conf
MARK="# written by nntracker infra/podman/setup.sh"

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
# Container names resolve on podman's networks only with a DNS server: netavark with
# aardvark-dns answers on every network, internal ones included (the trainers' network,
# docker-compose.yml `training`, is internal); the CNI backend's dnsname plugin skips internal
# networks, so a trainer there could not resolve `kafka` (seen on a fresh machine: every run
# stayed `starting`). containers.conf below selects netavark.
[ -x /usr/lib/podman/netavark ] || need+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || need+=(aardvark-dns)
# netavark (1.4, bookworm) sets up every network's NAT and isolation with iptables but does not
# depend on it: without it each container on a network fails to start with "netavark: No such
# file or directory (os error 2)" (seen on a fresh machine).
command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || need+=(iptables)
# `init: true` services (docker-compose.yml) run under podman's container-init, catatonit.
[ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
if [ "${#need[@]}" -gt 0 ]; then
  echo "podman setup: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=65536
[ "$nproc" = unlimited ] && nproc=65536
[ "$nofile" -gt 20000 ] && nofile=20000
[ "$nproc" -gt 4096 ] && nproc=4096
want="$MARK
[containers]
default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]
[engine]
runtime = \"runc\"
[network]
network_backend = \"netavark\""
if [ ! -f "$CONF" ] || { head -1 "$CONF" | grep -qF "$MARK" && [ "$(cat "$CONF")" != "$want" ]; }; then
  mkdir -p "$(dirname "$CONF")"
  printf '%s\n' "$want" > "$CONF"
  echo "podman setup: wrote $CONF" >&2
  # A service started under the old settings keeps them: start it again below.
  pkill -f "podman system service --time=0 unix://$SOCKET" 2>/dev/null && sleep 1 || true
fi

answering() { podman --remote --url "unix://$SOCKET" version >/dev/null 2>&1; }
if ! answering; then
  mkdir -p "$(dirname "$SOCKET")"
  rm -f "$SOCKET"
  echo "podman setup: starting the API service on $SOCKET" >&2
  # From /: the service outlives this checkout, and conmon fails every container start
  # ("Failed to get working directory") once the folder it was started in is removed.
  (cd / && exec setsid nohup podman system service --time=0 "unix://$SOCKET" \
    >"$(dirname "$SOCKET")/service.log" 2>&1 < /dev/null) &
  for _ in $(seq 1 100); do answering && break; sleep 0.2; done
  answering || { echo "podman setup: the API service did not answer; see $(dirname "$SOCKET")/service.log" >&2; exit 1; }
fi

echo "DOCKER_HOST=unix://$SOCKET"
