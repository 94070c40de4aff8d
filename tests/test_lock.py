"""The lock (requirements/*.txt, written by `make lock`) agrees with pyproject.toml.

``make install``, the production build and the container install exactly what the lock says,
so a pin changed in pyproject.toml without ``make lock`` would otherwise go unnoticed: the
development environment would keep the old version and production would never see the new.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: Each lock file and the groups of pyproject.toml it must hold: each lock is resolved on top
#: of the one before it.
LAYERS = {
    "runtime.txt": ["dependencies"],
    "dev.txt": ["dependencies", "dev"],
    "bench.txt": ["dependencies", "dev", "bench"],
}

PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")


def read_lock(name: str) -> dict[str, set[str]]:
    """Every locked package of ``name`` and its versions (one per Python a fork covers)."""
    locked: dict[str, set[str]] = {}
    entry = ""
    for line in (LOCKS / name).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith(" "):
            match = PINNED.match(line)
            assert match, f"{name}: not an exact pin: {line!r}"
            entry = canonicalize_name(match["name"])
            locked.setdefault(entry, set()).add(match["version"])
    return locked


def requirements(group: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    listed = project[group] if group == "dependencies" else project["optional-dependencies"][group]
    return [Requirement(line) for line in listed]


def disagreements(locked: dict[str, set[str]], wanted: list[Requirement]) -> list[str]:
    """What of ``wanted`` is missing from ``locked`` or locked at another version."""
    problems = []
    for requirement in wanted:
        (pin,) = (spec.version for spec in requirement.specifier if spec.operator == "==")
        versions = locked.get(canonicalize_name(requirement.name))
        if versions is None:
            problems.append(f"{requirement} is not locked")
        elif versions != {pin}:
            problems.append(f"{requirement} is locked at {', '.join(sorted(versions))}")
    return problems


@pytest.mark.parametrize("lock", list(LAYERS))
def test_every_pinned_requirement_is_locked_at_its_version(lock: str) -> None:
    wanted = [requirement for group in LAYERS[lock] for requirement in requirements(group)]
    problems = disagreements(read_lock(lock), wanted)
    assert not problems, f"requirements/{lock} is stale, run `make lock`:\n  " + "\n  ".join(
        problems
    )


def test_a_missing_or_moved_pin_is_a_disagreement() -> None:
    wanted = requirements("dependencies")
    dropped, moved = wanted[0], wanted[1]
    locked = read_lock("runtime.txt")
    del locked[canonicalize_name(dropped.name)]
    locked[canonicalize_name(moved.name)] = {"0.1"}
    assert disagreements(locked, wanted) == [
        f"{dropped} is not locked",
        f"{moved} is locked at 0.1",
    ]


def build_requirements() -> list[Requirement]:
    """pip and setuptools, as requirements/build.in pins them."""
    lines = (LOCKS / "build.in").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_the_installer_and_build_backend_are_locked() -> None:
    problems = disagreements(read_lock("build.txt"), build_requirements())
    assert not problems, "requirements/build.txt is stale, run `make lock`:\n  " + "\n  ".join(
        problems
    )


def test_the_wheel_is_built_by_the_locked_setuptools() -> None:
    """--no-build-isolation builds with the installed setuptools: the one pyproject.toml names."""
    backend = [Requirement(line) for line in PYPROJECT["build-system"]["requires"]]
    assert [str(requirement) for requirement in backend] == [
        str(requirement) for requirement in build_requirements() if requirement.name == "setuptools"
    ]


def test_pyproject_pins_every_requirement_exactly() -> None:
    """The lock test compares versions, so pyproject.toml names one version of each."""
    groups = ["dependencies", *PYPROJECT["project"]["optional-dependencies"]]
    loose = [
        str(requirement)
        for group in groups
        for requirement in requirements(group)
        if [spec.operator for spec in requirement.specifier] != ["=="]
    ]
    assert not loose


@pytest.mark.parametrize(("lower", "upper"), [("runtime.txt", "dev.txt"), ("dev.txt", "bench.txt")])
def test_each_lock_keeps_the_versions_of_the_one_below(lower: str, upper: str) -> None:
    """CI tests under dev.txt exactly the packages production runs from runtime.txt."""
    below, above = read_lock(lower), read_lock(upper)
    differ = {name: (versions, above.get(name)) for name, versions in below.items()}
    assert {name: pair for name, pair in differ.items() if pair[0] != pair[1]} == {}


@pytest.mark.parametrize("lock", [*LAYERS, "build.txt"])
def test_every_locked_package_has_hashes(lock: str) -> None:
    """pip's --require-hashes refuses a lock with one unhashed entry; say which."""
    entries = re.split(r"\n(?=[A-Za-z0-9])", (LOCKS / lock).read_text())
    unhashed = [
        entry.split()[0]
        for entry in entries
        if PINNED.match(entry) and "--hash=sha256:" not in entry
    ]
    assert not unhashed


def test_pre_commit_runs_the_locked_ruff() -> None:
    """pre-commit fetches ruff by tag; any other version would format differently from CI."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (ruff,) = [repo for repo in config["repos"] if repo["repo"].endswith("/ruff-pre-commit")]
    assert read_lock("dev.txt")["ruff"] == {ruff["rev"].removeprefix("v")}
