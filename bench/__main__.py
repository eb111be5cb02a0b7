"""`python -m bench` (`make bench`): every benchmark against its peer, in one run.

Writes bench/results.json (the keys of issue 7) and docs/benchmarks.md. Each benchmark runs
in its own subprocess so one's TensorFlow or event loop cannot disturb another's timings.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
REPORT = ROOT / "docs" / "benchmarks.md"
BENCHMARKS = ("overhead", "latency", "ingest", "storage")
PACKAGES = ("tensorflow-cpu", "keras", "tensorboard", "faust-streaming", "aiokafka", "confluent-kafka",
            "psycopg", "django", "channels", "daphne", "zstandard", "numpy")


def run_one(name: str) -> dict[str, Any]:
    """Run bench.<name> in a subprocess; its last stdout line holding JSON is the result."""
    started = time.monotonic()
    code = f"import json, bench.{name} as m; print('RESULT ' + json.dumps(m.run()))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-2000:], "wall_s": time.monotonic() - started}
    result = json.loads(lines[-1][len("RESULT "):])
    result["wall_s"] = time.monotonic() - started
    return result


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import os

    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "kafka": "3.9.1", "packages": versions,
            "at": datetime.now(UTC).isoformat(timespec="seconds")}


def headline(details: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The flat keys of bench/results.json."""
    keys = ("training_overhead_ratio", "tensorboard_overhead_ratio", "live_latency_p95_s",
            "ingest_points_per_s", "raw_copy_points_per_s", "ingest_vs_raw_copy_ratio",
            "float16_bytes_per_value", "float32_bytes_per_value")
    flat: dict[str, Any] = {}
    for result in details.values():
        for key in keys:
            if key in result:
                flat[key] = result[key]
    return flat


def report(results: dict[str, Any]) -> str:
    """docs/benchmarks.md."""
    m = results["machine"]
    lines = ["# Benchmarks", "", f"Measured {m['at']} by `make bench` on {m['cpus']} CPUs, "
             f"Python {m['python']}, Kafka {m['kafka']}.", "", "| figure | value |", "|---|---|"]
    for key, value in results["headline"].items():
        lines.append(f"| `{key}` | {value:.4g} |" if isinstance(value, float) else f"| `{key}` | {value} |")
    lines += ["", "Raw numbers per benchmark:", "", "```json",
              json.dumps(results["details"], indent=2), "```", "",
              "Package versions:", "", "```json", json.dumps(m["packages"], indent=2), "```", ""]
    return "\n".join(lines)


def main(names: list[str]) -> int:
    """Run the named benchmarks (default: all) and write the results."""
    details = {}
    for name in names or BENCHMARKS:
        print(f"bench: {name} ...", flush=True)
        details[name] = run_one(name)
        print(json.dumps(details[name], indent=2), flush=True)
    results = {"machine": machine(), "headline": headline(details), "details": details}
    RESULTS.write_text(json.dumps({**results["headline"], "machine": results["machine"],
                                   "details": details}, indent=2) + "\n")
    REPORT.write_text(report(results))
    print(json.dumps(results["headline"], indent=2))
    return 0 if all("error" not in d for d in details.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
