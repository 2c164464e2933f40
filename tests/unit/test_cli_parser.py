"""The `keng` parser: listing the commands imports none of their modules (nor the libraries behind them), yet lists
them as the modules themselves register them; a command's `--help` shows its options; and the CLI's modules import
no command module but their own, so there is no loop among them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from keng.runtime.cli.main import COMMANDS, build_parser, parse

CLI = Path(__file__).resolve().parents[2] / "runtime" / "cli"
COMMAND_MODULES = {c.module for c in COMMANDS}
HEAVY = ("aiohttp", "aiomqtt", "eventsourcing", "numpy", "structlog", "rich")


def test_keng_help_imports_no_command_module_nor_the_libraries_behind_them() -> None:
    code = (
        "import sys\n"
        "from keng.runtime.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "cli = 'keng.runtime.cli.'\n"
        "print(*sorted(m for m in sys.modules if m.split('.')[0] in sys.argv[1:] or m.startswith(cli)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *HEAVY], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    *help_lines, loaded = done.stdout.splitlines()
    assert help_lines[0].startswith("usage: keng") and "integration" in "\n".join(help_lines)
    assert loaded.split() == ["keng.runtime.cli.main"]


def test_the_command_list_is_the_one_the_modules_register() -> None:
    assert build_parser(()).format_help() == build_parser().format_help()


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_a_commands_help_shows_its_own_options(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        parse([command, "--help"])
    assert ended.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: keng {command} [-h]") and "-h, --help" in shown
    expected = {"init": "--sample", "serve": "--port", "broadcast": "draft", "demo": "--offline-rate"}
    assert expected.get(command, "") in shown


def imports_of(path: Path) -> set[str]:
    """The runtime.cli modules a module imports, at any depth of its code (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "keng.runtime.cli":
                names |= {f"keng.runtime.cli.{alias.name}" for alias in node.names}
            elif node.module.startswith("keng.runtime.cli."):
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.startswith("keng.runtime.cli.")}
    return {name.removeprefix("keng.runtime.cli.") for name in names}


def test_no_command_module_imports_another_and_nothing_imports_main() -> None:
    graph = {path.stem: imports_of(path) for path in CLI.glob("*.py") if path.stem not in ("__init__", "__main__")}
    crossing = {name: sorted(deps & COMMAND_MODULES) for name, deps in graph.items() if deps & COMMAND_MODULES}
    assert crossing == {}
    assert [name for name, deps in graph.items() if "main" in deps] == []
