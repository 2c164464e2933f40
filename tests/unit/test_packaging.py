"""The README's run command installs keng without extras: nothing on its import path may need one."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_and_the_service_import_without_the_postgres_or_coqui_extras() -> None:
    code = (
        "import sys\n"
        "for name in ('psycopg', 'psycopg_pool', 'TTS', 'torch'):\n"
        "    sys.modules[name] = None  # importing any of these now raises ImportError\n"
        "import runtime.cli.main, runtime.http.app, runtime.cli.service, runtime.demo.run\n"
        "runtime.cli.main.build_parser()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
