"""What the wheel ships, checked without building one (tests/test_production_install.py builds,
installs and serves it).
"""

from __future__ import annotations

import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_of_the_app_is_in_the_wheel() -> None:
    """pyproject.toml lists the packages one by one; a new one left out would be missing."""
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "app").rglob("__init__.py")
    }
    assert found - set(SETUPTOOLS["packages"]) == set()


def test_the_folders_beside_the_package_travel_inside_it() -> None:
    """templates/, static/ and migrations/ stay at the top and install as app.templates, ..."""
    mapped = SETUPTOOLS["package-dir"]
    assert {mapped[f"app.{folder}"] for folder in ("templates", "static", "migrations")} == {
        "templates",
        "static",
        "migrations",
    }
    for package, folder in mapped.items():
        assert package in SETUPTOOLS["packages"]
        assert (ROOT / folder).is_dir()


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [
        (keyword.upper(), rest.strip())
        for keyword, _, rest in (
            line.strip().partition(" ") for line in text.splitlines() if line.strip()
        )
        if not keyword.startswith("#")
    ]


def test_the_container_installs_only_through_the_tested_build_script() -> None:
    """CI has no Docker engine: the image may only do what tests/test_production_install.py ran."""
    runs = [rest for keyword, rest in dockerfile_instructions() if keyword == "RUN"]
    assert "bash scripts/build-production.sh /opt/user-settings" in runs
    installs = [run for run in runs if re.search(r"\b(pip|uv|apt-get|pybabel|venv)\b", run)]
    assert installs == []
    (command,) = [rest for keyword, rest in dockerfile_instructions() if keyword == "CMD"]
    assert json.loads(command) == ["gunicorn", "-c", "/opt/user-settings/gunicorn.conf.py"]


def test_the_build_context_holds_what_the_build_script_copies() -> None:
    script = (ROOT / "scripts" / "build-production.sh").read_text()
    copied = re.search(r"for part in ([^;]+);", script)
    assert copied
    needed = {*copied[1].split(), "requirements", "scripts", "gunicorn.conf.py"}
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert [name for name in needed if any(fnmatch(name, pattern) for pattern in ignored)] == []


def test_compose_migrates_before_serving_and_waits_for_healthy_services() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert services["migrate"]["command"] == ["flask", "db", "upgrade"]
    assert services["web"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "redis": {"condition": "service_healthy"},
    }
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert all("healthcheck" in services[name] for name in ("db", "redis"))
    # Both run the image the Dockerfile builds, configured for production.
    for name in ("migrate", "web"):
        assert services[name]["build"] == "."
        assert services[name]["environment"]["APP_ENV"] == "production"
