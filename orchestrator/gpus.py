"""GPU presence and utilisation through `nvidia-smi` (None everywhere when there is none)."""

from __future__ import annotations

import shutil
import subprocess


def nvidia_smi() -> str | None:
    """Path of nvidia-smi when the host has the NVIDIA driver tools."""
    return shutil.which("nvidia-smi")


def _query(args: list[str]) -> list[list[str]]:
    exe = nvidia_smi()
    if exe is None:
        return []
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv
            [exe, *args, "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]


def host_gpus() -> list[str]:
    """Names of this host's GPUs (empty when none or no driver)."""
    return [row[0] for row in _query(["--query-gpu=name"]) if row]


def usage(pids: set[int] | None = None) -> tuple[float | None, int | None]:
    """(utilisation %, memory bytes) of the GPUs `pids` use; all GPUs when pids is None."""
    gpus = {row[0]: row for row in _query(["--query-gpu=uuid,utilization.gpu,memory.used"])}
    if not gpus:
        return None, None
    if pids is None:
        used = list(gpus)
        memory = sum(int(float(gpus[g][2])) for g in used) * 1024**2
    else:
        apps = [r for r in _query(["--query-compute-apps=pid,gpu_uuid,used_memory"]) if len(r) == 3]
        mine = [r for r in apps if r[0].isdigit() and int(r[0]) in pids]
        if not mine:
            return 0.0, 0
        used = list(dict.fromkeys(r[1] for r in mine))
        memory = sum(int(float(r[2])) for r in mine) * 1024**2
    percent = max(float(gpus[g][1]) for g in used if g in gpus) if used else 0.0
    return percent, memory
