"""Print the requirements of one component group of pyproject.toml, one per line.

`python requirements.py GROUP [--tensorflow-from-image]`: the shared dependencies plus the
group's (`nntracker[...]` references expanded). With `--tensorflow-from-image` the
`tensorflow-cpu` requirement becomes `tensorflow` with the same version range: the GPU image
keeps the TensorFlow its base image ships, and pip refuses a base outside the range.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
SELF = re.compile(r"^nntracker\[(?P<extras>[^\]]+)\]$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def name_of(requirement: str) -> str:
    """The normalised project name of a requirement string."""
    match = NAME.match(requirement.strip())
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def group(project: dict, name: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """Requirements of one optional-dependency group, self-references expanded."""
    groups = project["optional-dependencies"]
    if name not in groups:
        raise SystemExit(f"unknown group {name!r}; pyproject.toml has {', '.join(groups)}")
    out: list[str] = []
    for requirement in groups[name]:
        if match := SELF.match(requirement.replace(" ", "")):
            for extra in match["extras"].split(","):
                if extra not in seen | {name}:
                    out += group(project, extra, seen | {name})
        else:
            out.append(requirement)
    return out


def requirements(name: str, pyproject: Path = PYPROJECT, tf_from_image: bool = False) -> list[str]:
    """Shared dependencies plus the group's, without duplicates, in declaration order."""
    project = tomllib.loads(pyproject.read_text())["project"]
    lines = list(dict.fromkeys([*project["dependencies"], *group(project, name)]))
    if tf_from_image:
        lines = [re.sub(r"^tensorflow-cpu", "tensorflow", r) for r in lines]
    return lines


def main(argv: list[str]) -> int:
    """Print the requirements of the group named on the command line."""
    flags = {a for a in argv if a.startswith("--")}
    names = [a for a in argv if not a.startswith("--")]
    if len(names) != 1 or flags - {"--tensorflow-from-image"}:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(requirements(names[0], tf_from_image="--tensorflow-from-image" in flags)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
