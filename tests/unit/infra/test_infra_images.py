"""infra/images.py without an engine: the tags, the build command each engine gets, the base
choice, and the one line a failed build prints (with a stand-in engine script)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from infra import images
from orchestrator.settings import OrchestratorSettings

ROOT = Path(__file__).resolve().parents[3]


def fake_engine(tmp_path: Path) -> Path:
    """An engine command that has no image and prints $BUILD_OUT on `build` (exit $BUILD_CODE)."""
    script = tmp_path / "podman"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = build ]; then printf "%s\\n" "$BUILD_OUT"; exit "$BUILD_CODE"; fi\n'
        "exit 1\n"
    )
    script.chmod(0o755)
    return script


def test_it_tags_every_image_with_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert images.reference("web") == f"nntracker-web:{version}"
    assert OrchestratorSettings().nnt_trainer_image == images.reference("trainer"), (
        "the docker runtime's default is the trainer image `make images` builds"
    )


def test_it_builds_every_target_from_a_stage_of_the_dockerfile() -> None:
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", images.DOCKERFILE.read_text(), re.M))
    assert set(images.TARGETS) <= stages
    assert "trainer-gpu" not in images.DEFAULT_TARGETS, "it runs only where a GPU is"


def test_it_gives_podman_the_base_the_ignore_file_and_dockers_image_format(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NNT_CONTAINER_ENGINE", str(fake_engine(tmp_path)))
    args = images.build_command("trainer", "localhost/nnt-base:x")
    assert args[args.index("--target") + 1] == "trainer"
    assert args[args.index("-t") + 1] == images.reference("trainer")
    assert "PYTHON_IMAGE=localhost/nnt-base:x" in args
    assert args[args.index("--format") + 1] == "docker", "OCI images drop the HEALTHCHECK"
    assert args[args.index("--ignorefile") + 1] == str(images.IGNOREFILE)
    assert args[-1] == str(ROOT)


def test_it_gives_docker_no_podman_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\nexit 1\n")
    docker.chmod(0o755)
    monkeypatch.setenv("NNT_CONTAINER_ENGINE", str(docker))
    args = images.build_command("web", "python:3.11.13-slim-bookworm")
    assert not {"-v", "--format", "--ignorefile"} & set(args)


def test_it_prefers_the_named_base_and_names_the_local_one_by_its_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert images.choose_base("my/python:3.11") == "my/python:3.11"
    monkeypatch.setenv("NNT_BASE_IMAGE", "env/python:3.11")
    assert images.choose_base() == "env/python:3.11"
    first = images.local_base_reference()
    monkeypatch.setattr(images, "DEBIAN_PACKAGES", (*images.DEBIAN_PACKAGES, "curl"))
    assert images.local_base_reference() != first, "another package list, another base"


def test_it_refuses_an_unknown_target_naming_the_known_ones() -> None:
    with pytest.raises(images.ImagesError, match="unknown target gpu; targets: web, stream"):
        images.build(["gpu"], base="x")


def test_a_failed_build_prints_one_line_naming_the_target_the_cause_and_the_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NNT_CONTAINER_ENGINE", str(fake_engine(tmp_path)))
    monkeypatch.setenv("NNT_IMAGES_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("BUILD_OUT", "STEP 1/2: FROM x\nError: no space left on device")
    monkeypatch.setenv("BUILD_CODE", "1")
    assert images.main(["build", "trainer", "--base", "x"]) == 1
    out, err = capsys.readouterr()
    assert "images: trainer: STEP 1/2: FROM x" in out, "progress lines while it builds"
    log = tmp_path / "logs" / "trainer.log"
    assert err.strip() == (
        f"images: trainer: the build failed (Error: no space left on device); log: {log}"
    )
    assert "no space left" in log.read_text()


def _closure(package: str) -> set[str]:
    """Our packages a component's code imports, directly or through another of ours."""
    from tests.unit.test_import_direction import OURS, ROOT, imported_roots

    seen, todo = set(), [package]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for path in (ROOT / current).rglob("*.py"):
            todo.extend(imported_roots(path) & OURS - seen)
    return seen


@pytest.mark.parametrize(
    ("stage", "package"),
    [("web-build", "web"), ("stream-build", "stream_processors"),
     ("orchestrator-build", "orchestrator"), ("trainer-build", "trainer")],
)  # fmt: skip
def test_each_image_holds_every_package_its_code_imports(stage: str, package: str) -> None:
    text = (ROOT / "infra" / "docker" / "Dockerfile").read_text()
    body = text.split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
    copied = set(re.findall(r"^COPY (\w+) \./\1$", body, re.M))
    # orchestrator/launch.py imports the trainer for the process runtime only; the image's
    # orchestrator starts trainers in their own image (the Docker runtime)
    needed = _closure(package) - ({"trainer"} if package == "orchestrator" else set())
    assert needed <= copied, f"{stage}: COPY {sorted(needed - copied)}"
