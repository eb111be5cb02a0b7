"""Build the product's images from infra/docker/Dockerfile with podman or Docker.

`python -m infra.images build [TARGET ...] [--base IMAGE]` builds the targets (default: web
stream orchestrator trainer; trainer-gpu on request) as `nntracker-<target>:<version>` and
prints their sizes; `python -m infra.images base` makes the local Debian base. The base is
`--base` or NNT_BASE_IMAGE when given, else the official Python image when the engine has it
or can pull it, else a Debian base made here with mmdebstrap from Debian's packages (for
machines without a registry), made once and reused. NNT_CONTAINER_ENGINE names the engine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
IGNOREFILE = ROOT / "infra" / "docker" / "Dockerfile.dockerignore"
DEFAULT_TARGETS = ("web", "stream", "orchestrator", "trainer")
TARGETS = (*DEFAULT_TARGETS, "trainer-gpu")
OFFICIAL_BASE = "python:3.11.13-slim-bookworm"  # the Dockerfile's PYTHON_IMAGE default
SUITE = "bookworm"  # its Python is 3.11, as the official base's
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates")
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
PULL_TIMEOUT_S = 60.0
PROGRESS = re.compile(r"^(\[\d+/\d+\] STEP |STEP |Step |#\d+ \[)")


class ImagesError(RuntimeError):
    """An image could not be built; the text names the target, the cause and the log."""


def version() -> str:
    """The project version from pyproject.toml: every image's tag."""
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def reference(target: str) -> str:
    """The tag a target is built as: nntracker-<target>:<version>."""
    return f"nntracker-{target}:{version()}"


def engine() -> str:
    """The container engine command: NNT_CONTAINER_ENGINE, else podman, else docker."""
    wanted = os.environ.get("NNT_CONTAINER_ENGINE", "")
    for name in [wanted] if wanted else ["podman", "docker"]:
        if path := shutil.which(name):
            return path
    raise ImagesError(
        f"no container engine found ({wanted or 'podman or docker'} not on PATH); "
        "install podman (infra/podman/setup.sh) or Docker, or set NNT_CONTAINER_ENGINE"
    )


def is_podman(command: str) -> bool:
    """Whether the engine is podman (its build takes -v; Docker's does not)."""
    return Path(command).name.startswith("podman")


def run(args: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run an engine command quietly; its output is returned, never raised."""
    return subprocess.run(  # noqa: S603 - the engine, with our own arguments
        list(args), capture_output=True, text=True, timeout=timeout, check=False
    )


def exists(image: str) -> bool:
    """Whether the engine holds this image."""
    return run([engine(), "image", "inspect", image]).returncode == 0


def size(image: str) -> int:
    """The image's size in bytes, as the engine reports it."""
    done = run([engine(), "image", "inspect", "--format", "{{.Size}}", image])
    return int(done.stdout.strip() or 0)


def inspect(image: str) -> dict[str, Any]:
    """The engine's inspect data of an image."""
    done = run([engine(), "image", "inspect", image])
    if done.returncode != 0:
        raise ImagesError(f"{image}: {done.stderr.strip()[-300:]}")
    return dict(json.loads(done.stdout)[0])


def healthcheck(image: str) -> list[str] | None:
    """The image's HEALTHCHECK test (["NONE"] when disabled), None when it has none."""
    data = inspect(image)
    # Docker keeps it in Config; podman 4 beside it (and its Docker API shows neither).
    check = data.get("Config", {}).get("Healthcheck") or data.get("Healthcheck") or {}
    return list(check["Test"]) if check.get("Test") else None


def local_base_reference() -> str:
    """The local Debian base's tag: its suite and a short hash of its package list."""
    digest = hashlib.sha256(" ".join((SUITE, *DEBIAN_PACKAGES)).encode()).hexdigest()[:8]
    return f"localhost/nnt-base:{SUITE}-{digest}"


def local_base() -> str:
    """Make the Debian base with mmdebstrap and import it, unless the engine has it."""
    image = local_base_reference()
    if exists(image):
        return image
    if not shutil.which("mmdebstrap"):
        raise ImagesError("no mmdebstrap to make the local Debian base: apt-get install mmdebstrap")
    print(f"images: making the base {image} with mmdebstrap ({', '.join(DEBIAN_PACKAGES)})")
    with tempfile.TemporaryDirectory(prefix="nnt-base-") as tmp:
        tar = Path(tmp) / "base.tar"
        made = run(["mmdebstrap", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}",
                    "--quiet", SUITE, str(tar)])  # fmt: skip
        if made.returncode != 0:
            raise ImagesError(f"mmdebstrap failed: {made.stderr.strip()[-500:]}")
        imported = run([engine(), "import", str(tar), image])
        if imported.returncode != 0:
            raise ImagesError(f"import of the base failed: {imported.stderr.strip()[-500:]}")
    return image


def official_base() -> str | None:
    """The official Python base when the engine has it or pulls it in time, else None."""
    if exists(OFFICIAL_BASE):
        return OFFICIAL_BASE
    try:
        pulled = run([engine(), "pull", f"docker.io/library/{OFFICIAL_BASE}"], PULL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None
    return f"docker.io/library/{OFFICIAL_BASE}" if pulled.returncode == 0 else None


def choose_base(base: str | None = None) -> str:
    """--base, else NNT_BASE_IMAGE, else the official base, else the local Debian one."""
    return base or os.environ.get("NNT_BASE_IMAGE") or official_base() or local_base()


def log_dir() -> Path:
    """Where each target's build log goes (one file per target, overwritten)."""
    path = Path(os.environ.get("NNT_IMAGES_LOG_DIR", Path(tempfile.gettempdir()) / "nnt-images"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_command(target: str, base: str) -> list[str]:
    """The engine's build command line for one target on one base."""
    command = engine()
    args = [command, "build", "-f", str(DOCKERFILE), "--target", target, "-t", reference(target),
            "--build-arg", f"PYTHON_IMAGE={base}", "--network", "host"]  # fmt: skip
    if is_podman(command):
        # Docker reads <Dockerfile>.dockerignore itself; podman 4 is told. Docker's image
        # format: OCI's has no HEALTHCHECK.
        args += ["--ignorefile", str(IGNOREFILE), "--layers", "--format", "docker"]
        if HOST_CA.exists():
            # pip inside the build then trusts what the host trusts (a proxy's CA included).
            args += ["-v", f"{HOST_CA}:{HOST_CA}:ro"]
    return [*args, str(ROOT)]


def build_one(target: str, base: str) -> str:
    """Build one target, its output in its log; the image reference, or ImagesError."""
    log = log_dir() / f"{target}.log"
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    started = time.monotonic()
    print(f"images: {target}: building on {base} (log: {log})", flush=True)
    with log.open("w") as out:
        proc = subprocess.Popen(  # noqa: S603 - the engine, with our own arguments
            build_command(target, base), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env, cwd=ROOT,
        )  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if PROGRESS.match(line):
                print(f"images: {target}: {line.strip()[:100]}", flush=True)
        code = proc.wait()
    if code != 0:
        raise ImagesError(f"{target}: the build failed ({cause(log)}); log: {log}")
    print(f"images: {target}: built {reference(target)} in {time.monotonic() - started:.0f} s")
    return reference(target)


def cause(log: Path) -> str:
    """The last error-looking line of a build log (else its last line)."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"error|failed|denied", line, re.I)]
    return ((errors or lines or ["no output"])[-1])[:300]


def build(targets: list[str], base: str | None = None) -> dict[str, str]:
    """Build the targets (all defaults when empty); target -> image reference."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ImagesError(f"unknown target {', '.join(unknown)}; targets: {', '.join(TARGETS)}")
    chosen = choose_base(base)
    return {target: build_one(target, chosen) for target in targets or DEFAULT_TARGETS}


def size_table(images: dict[str, str]) -> str:
    """A table of the images and their sizes (MB)."""
    rows = [f"{'image':<36} {'size':>9}"]
    rows += [f"{ref:<36} {size(ref) / 1e6:>6.0f} MB" for ref in images.values()]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """`build [TARGET ...] [--base IMAGE]` or `base`; 0 when every image is built."""
    parser = argparse.ArgumentParser(prog="python -m infra.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    building = sub.add_parser("build", help="build images (default: every product image)")
    building.add_argument("targets", nargs="*", metavar="TARGET", help=", ".join(TARGETS))
    building.add_argument("--base", help="base image (PYTHON_IMAGE); default: see above")
    sub.add_parser("base", help="make the local Debian base image unless it exists")
    args = parser.parse_args(argv)
    try:
        if args.command == "base":
            print(local_base())
            return 0
        images = build(list(args.targets), args.base)
    except ImagesError as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 1
    print(size_table(images))
    return 0


if __name__ == "__main__":
    sys.exit(main())
