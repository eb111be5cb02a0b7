"""Every REST operation fuzzed from the OpenAPI schema (schemathesis) against the real server.

The product's own web server (daphne, `python -m web serve`, real PostgreSQL and Kafka) gets
schema-valid and schema-violating requests for each operation, derandomized and bounded, as a
user with a token (admin operations as a staff user). The check: no response is a 5xx, and the
server still answers afterwards. Generated ids are steered half of the time onto the caller's
own simulations and onto throwaway users, so the fuzz reaches the code behind the lookups
instead of stopping at 404, and never touches another test's users.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import schemathesis
from django.db import connection
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

PASSWORD = "pw-long-enough-1"
# x2 modes x 34 operations: about 800 requests, about a minute. Raise it for a deeper hunt.
EXAMPLES_PER_MODE = int(os.environ.get("NNT_FUZZ_EXAMPLES", "12"))


@dataclass
class World:
    """The callers and the objects generated ids are steered onto."""

    user_token: str
    staff_token: str
    simulations: list[str]
    users: list[int]
    keep_token: int
    decoy_token: int
    failures: list[str] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)


def _token(base: str, username: str) -> tuple[int, str]:
    resp = requests.post(
        f"{base}/api/tokens", json={"username": username, "password": PASSWORD}, timeout=30
    )
    assert resp.status_code == 201, resp.text
    from web.accounts.models import ApiToken

    row = ApiToken.objects.filter(user__username=username).order_by("-pk").first()
    return row.pk, resp.json()["token"]


def _world(base: str, make_user: Any) -> World:
    from web.simulations.models import Simulation

    ada, admin = make_user(), make_user(staff=True)
    sims = [
        Simulation.objects.create(
            owner=ada,
            owner_name=ada.get_username(),
            name=f"fuzz {i}",
            total_epochs=5,
            status=status,
            tags=["fuzz", f"t{i}"],
        )
        for i, status in enumerate(["running", "finished", "queued"])
    ]
    at = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [(s.id, e, m, 1.0 / e, at) for s in sims for e in range(1, 6) for m in ("loss", "acc")]
    with connection.cursor() as cur:
        cur.executemany("INSERT INTO nnt_epoch_metric VALUES (%s, %s, %s, %s, %s)", rows)
    decoy, _ = _token(base, ada.get_username())
    keep, user_token = _token(base, ada.get_username())
    _, staff_token = _token(base, admin.get_username())
    throwaway = [make_user().pk for _ in range(4)]
    return World(user_token, staff_token, [str(s.id) for s in sims], throwaway, keep, decoy)


def _pick(value: Any) -> int:
    """A stable number from a generated value, to steer it without breaking derandomization."""
    return value if isinstance(value, int) else sum(map(ord, str(value)))


def _steer(world: World, case: Any) -> Any:
    """Point about half of the generated ids at real objects (deterministic per value)."""
    params, query = case.path_parameters or {}, case.query or {}
    for where, name in ((params, "simulation_id"), (query, "other")):
        if name in where and _pick(where[name]) % 2 == 0:
            where[name] = world.simulations[_pick(where[name]) // 2 % len(world.simulations)]
    if "tag" in query and _pick(query["tag"]) % 2 == 0:
        query["tag"] = "fuzz"
    if "user_id" in params:
        n = abs(_pick(params["user_id"]))
        # Only throwaway users or ids nobody has: other tests' users are never acted on.
        params["user_id"] = world.users[n // 2 % len(world.users)] if n % 2 == 0 else 10**9 + n
    if "token_id" in params and params["token_id"] == world.keep_token:
        params["token_id"] = world.decoy_token  # never revoke the token the fuzz runs with
    return case


def _tracebacks(log: str) -> str:
    """The server's tracebacks in a stretch of its log (the request lines dropped)."""
    blocks = log.split("Traceback (most recent call last):")[1:]
    return "\n".join("Traceback:" + b.split("\n127.0.0.1:")[0][-2500:] for b in blocks[:3])


def _fuzz(base: str, world: World, operation: Any, mode: GenerationMode) -> None:
    token = world.staff_token if operation.path.startswith("/api/admin/") else world.user_token
    headers = {"Authorization": f"Bearer {token}"}
    try:
        strategy = operation.as_strategy(generation_mode=mode).map(lambda c: _steer(world, c))
    except Exception as exc:  # an operation with nothing to negate has no negative cases
        if mode is GenerationMode.NEGATIVE:
            return
        raise AssertionError(f"{operation.label}: no strategy ({exc})") from exc

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        resp = case.call(base_url=base, headers=headers, timeout=60)
        world.answers[f"{operation.label} {resp.status_code}"] += 1
        if resp.status_code >= 500:
            world.failures.append(
                f"{operation.label} [{mode.value}] -> {resp.status_code}: {resp.text[:300]}\n"
                f"  {case.as_curl_command(headers=headers, base_url=base)}"
            )

    try:
        run()
    except Unsatisfiable:
        if mode is not GenerationMode.NEGATIVE:
            raise


@pytest.mark.timeout(600)
def test_it_answers_every_generated_request_without_a_server_error(
    live_web: Any, make_user: Any
) -> None:
    base = live_web.url
    log_start = live_web.log.stat().st_size
    world = _world(base, make_user)
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30, [op.label for op in operations]
    # Deletions last, so that the other operations still find the objects to work on.
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(base, world, operation, mode)
    print("\n".join(f"{n:4d} {answer}" for answer, n in sorted(world.answers.items())))
    alive = requests.get(
        f"{base}/api/simulations",
        headers={"Authorization": f"Bearer {world.user_token}"},
        timeout=30,
    )
    assert alive.status_code == 200, "the server stopped answering after the fuzz"
    with live_web.log.open("rb") as handle:
        handle.seek(log_start)
        log = handle.read().decode(errors="replace")
    assert not world.failures, "\n".join(world.failures) + "\n" + _tracebacks(log)
    assert "Traceback" not in log, _tracebacks(log)


# Multipart submissions with random files (POST /api/experiments), on a server whose upload
# limits are small enough to cross: sizes around each limit, random bytes, names and
# extensions, fields no view reads, duplicated and missing fields.
KIB = 1024
UPLOAD_LIMITS = {"model": 64 * KIB} | {f"dataset_{d}": 1024 * KIB for d in ("train", "test", "val")}
EDGE_SIZES = [0, 1, 64 * KIB, 64 * KIB + 1, 1024 * KIB, 1024 * KIB + 1, 1100 * KIB]
FILE_NAMES = ["t.csv", "t.npz", "t.json", "t.arff", "t.pkl", "t.exe", "", "noext", "../../x.csv"]


GOOD_CONFIG = json.dumps({"name": "fuzz-upload", "total_epochs": 1, "learning_rates": [0.1]})
GOOD_MODEL = json.dumps(
    {"class_name": "Sequential", "config": {"name": "m", "layers": []}}
).encode()


def _content() -> Any:
    from hypothesis import strategies as st

    return st.one_of(
        st.binary(max_size=512),
        st.sampled_from(EDGE_SIZES).map(lambda n: b"1,0\n" * (n // 4) + b"1" * (n % 4)),
        st.just(GOOD_MODEL),
        st.just(b"a,label\n1,0\n2,1\n"),
    )


def _parts() -> Any:
    from hypothesis import strategies as st

    field = st.sampled_from([*UPLOAD_LIMITS, "config", "config_file", "junk", "model"])
    part = st.tuples(field, st.sampled_from(FILE_NAMES) | st.text(max_size=12), _content())
    config = st.one_of(
        st.just(GOOD_CONFIG),
        st.text(max_size=200),
        st.none(),
    )
    return st.tuples(config, st.lists(part, max_size=5))


@pytest.mark.timeout(600)
def test_it_answers_random_multipart_uploads_without_a_server_error(
    small_limits_web: Any, make_user: Any
) -> None:
    base, log_start = small_limits_web.url, small_limits_web.log.stat().st_size
    _, token = _token(base, make_user().get_username())
    failures: list[str] = []
    answers: Counter[int] = Counter()

    @settings(
        max_examples=max(30, EXAMPLES_PER_MODE * 3),
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(submission=_parts())
    @example(
        submission=(
            GOOD_CONFIG,
            [("model", "m.json", GOOD_MODEL), ("dataset_train", "t.csv", b"a,label\n1,0\n")],
        )
    )
    @example(
        submission=(
            GOOD_CONFIG,
            [("model", "m.json", GOOD_MODEL), ("dataset_train", "t.csv", b"1" * 1100 * KIB)],
        )
    )
    def run(submission: Any) -> None:
        config, parts = submission
        files = [(field, (name, content)) for field, name, content in parts]
        resp = requests.post(
            f"{base}/api/experiments",
            data={} if config is None else {"config": config},
            files=files or None,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        answers[resp.status_code] += 1
        over = [f for f, _, c in parts if len(c) > UPLOAD_LIMITS.get(f, len(c))]
        if resp.status_code >= 500 or (over and resp.status_code != 413):
            sizes = [(f, len(c)) for f, _, c in parts]
            failures.append(f"{resp.status_code} for config={config!r:.60} parts={sizes}")

    run()
    print(dict(answers))
    with small_limits_web.log.open("rb") as handle:
        handle.seek(log_start)
        log = handle.read().decode(errors="replace")
    assert not failures, "\n".join(failures[:10])
    assert answers[413] and answers[201], f"the fuzz missed a limit or a success: {answers}"
    assert "Traceback" not in log, _tracebacks(log)


# Dataset references that are not uploads or web URLs: refused at submission with the field
# named, before any row is written or any uploaded file is stored.
HOSTILE_REFS = {
    "file-url": {"dataset_train": "file:///etc/passwd"},
    "gopher": {"dataset_train": "gopher://127.0.0.1:6379/_FLUSHALL"},
    "absolute-path": {"dataset_train": "/etc/passwd"},
    "relative-path": {"dataset_train": "../../secret_key"},
    "stored-traversal": {"dataset_train": "stored:../../secret_key"},
    "no-host": {"dataset_train": "https://"},
    "broken-ipv6": {"dataset_train": "http://[::1/x.csv"},
    "ftp-validation-set": {
        "dataset_train": "https://example.org/t.csv",
        "dataset_val": "ftp://x/v",
    },
    "file-test-set-beside-an-upload": {"dataset_test": "file:///proc/self/environ"},
}


@pytest.mark.parametrize("refs", HOSTILE_REFS.values(), ids=list(HOSTILE_REFS))
def test_it_refuses_dataset_references_that_are_not_web_urls(
    client: Any, make_user: Any, refs: dict[str, str]
) -> None:
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile

    from web.accounts.models import ApiToken
    from web.simulations.models import Simulation

    user = make_user()
    _, token = ApiToken.issue(user)
    before = set(settings.DATASETS_DIR.glob("*")) if settings.DATASETS_DIR.exists() else set()
    config = {"name": "hostile", "batch_size": 0} | refs
    files = {"model": SimpleUploadedFile("model.json", b'{"class_name": "Sequential"}')}
    if "dataset_train" not in refs:
        files["dataset_train"] = SimpleUploadedFile("train.csv", b"a,label\n1,0\n")
    resp = client.post(
        "/api/experiments",
        {"config": json.dumps(config)} | files,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert resp.status_code == 422, resp.content
    errors = resp.json()["errors"]
    for name, ref in refs.items():
        if not ref.startswith("https://example.org"):
            assert "http:// or https:// URL, or upload the file" in errors[name], errors
    assert "batch_size" in errors, "every problem is named at once"
    assert not Simulation.objects.filter(owner=user).exists()
    after = set(settings.DATASETS_DIR.glob("*")) if settings.DATASETS_DIR.exists() else set()
    assert after == before, "a refused submission stored a file"
