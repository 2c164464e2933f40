"""Packaging: what `pip install keng` puts on the import path, and what it needs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("domain", "adapters", "projections", "services", "runtime")


def test_the_cli_and_the_service_import_without_the_postgres_or_coqui_extras() -> None:
    code = (
        "import sys\n"
        "for name in ('psycopg', 'psycopg_pool', 'TTS', 'torch'):\n"
        "    sys.modules[name] = None  # importing any of these now raises ImportError\n"
        "import keng.runtime.cli.main, keng.runtime.http.app, keng.runtime.cli.service, keng.runtime.demo.run\n"
        "keng.runtime.cli.main.build_parser()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_package_folder_is_installed_under_the_keng_root_and_nothing_else_is() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        "keng." + ".".join(init.parent.relative_to(ROOT).parts)
        for layer in LAYERS
        if (ROOT / layer).is_dir()
        for init in (ROOT / layer).rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == folders
    assert setuptools["package-dir"] == {f"keng.{layer}": layer for layer in LAYERS if (ROOT / layer).is_dir()}
    assert all(name.startswith("keng.") for name in setuptools["packages"])
