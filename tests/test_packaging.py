"""What the wheel ships, checked without building one (tests/test_production_install.py builds,
installs and serves it).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

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
