"""The `keng` command line: argument parsing, the composition of each command, and error reporting.

Messages for ward staff are Vietnamese first, with the English detail (which names the broken rule) after a dash;
under `--json` a failure is one JSON object on stderr (`headline`, `detail`, `rule`).

Each command's module is imported only when that command runs or shows its `--help`: `keng --help` lists the
commands from `COMMANDS` and imports none of them (nor the store, the web server or the audio stack).

When the reader of stdout goes away (`keng events | head -1`) the command ends quietly with status 141, the status a
shell reports for a command ended by SIGPIPE (as `seq 1 100000 | head -1` does): no traceback, and `set -o pipefail`
scripts see that the output was cut short.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Collection, Sequence
from importlib import import_module
from typing import Any, NamedTuple, NoReturn

from keng.adapters.private_files import PRIVATE_UMASK

PIPE_CLOSED = 141  # 128 + SIGPIPE


class Command(NamedTuple):
    """A top-level command, the module under runtime/cli that registers it, and its line in `keng --help`."""

    name: str
    module: str
    help: str


# In `keng --help` order. Each module's `register()` adds its commands with the same help (a test holds them together).
COMMANDS = (
    Command("init", "admin", "create the data directory and store (with --sample: Bắc Từ Liêm sample)"),
    Command("district", "admin", "district inventory"),
    Command("staff", "admin", "staff members"),
    Command("endpoint", "admin", "endpoints"),
    Command("events", "admin", "the global event log, in order"),
    Command("area", "area", "đơn vị hành chính: areas by date, and the sync with the official list"),
    Command("broadcast", "broadcast", "bản tin: draft, approve and follow broadcasts"),
    Command("programme", "programme", "chương trình: ward slots, quiet hours, recurring programmes"),
    Command("dispatch", "dispatch", "phát lệnh tới thiết bị (deliver broadcasts over MQTT)"),
    Command("simulate", "dispatch", "a simulated fleet of the store's endpoints, obeying device protocol v1"),
    Command("demo", "dispatch", "the whole path on embedded defaults: sample district, broker, fleet, alert"),
    Command("broker", "broker", "the MQTT broker: mosquitto configuration from the registry"),
    Command("feedback", "feedback", "phản ánh của người dân (citizen feedback from the app)"),
    Command("report", "report", "read models: plan targets, coverage, FM->IP roadmap, drills (auditor)"),
    Command("audit", "audit", "tamper-evident audit trail and point-in-time replay (auditor)"),
    Command("cap", "cap", "CAP 1.2 (Common Alerting Protocol) tools"),
    Command("serve", "service", "run the HTTP service (API, webhooks, metrics)"),
    Command("token", "service", "API bearer tokens"),
    Command("integration", "service", "signed-webhook senders"),
    Command("tts", "tts", "text-to-speech tools"),
    Command("render", "render", "render a broadcast for all its channels (audio, board images, text)"),
    Command("doctor", "doctor", "check the installation (data directory permissions)"),
)
MODULES = {c.name: c.module for c in COMMANDS}


class _Version(argparse.Action):
    """`--version`: the installed distribution's version, looked up only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("keng")
        except PackageNotFoundError:  # a source tree that was never installed
            text = "unknown (not installed)"
        sys.stdout.write(f"keng {text}\n")
        parser.exit()


class _JsonUsageParser(argparse.ArgumentParser):
    """A parser whose usage errors are the one JSON object on stderr that every failure under `--json` is (its
    sub-command parsers are of its class: argparse makes them so)."""

    def error(self, message: str) -> NoReturn:
        import orjson

        command = self.prog.split()[1] if " " in self.prog else None
        failure = {"headline": "Lệnh không hợp lệ", "detail": f"{self.prog}: {message}", "rule": "usage"}
        sys.stderr.write(orjson.dumps({**failure, "command": command}).decode() + "\n")
        self.exit(2)


def build_parser(modules: Collection[str] | None = None, *, json_errors: bool = False) -> argparse.ArgumentParser:
    """The argument parser with the commands of `modules` (runtime/cli module names; default: all) and their options;
    every other command is only a name and its line of help, so its module is not imported."""
    parser = (_JsonUsageParser if json_errors else argparse.ArgumentParser)(
        prog="keng",
        description="keng: hệ thống phát thanh cơ sở và cảnh báo khẩn cấp (emergency alerting core)",
    )
    parser.add_argument("--version", action=_Version, help="print keng's version and exit")
    parser.add_argument("--data", help="data directory (default: $KENG_DATA or ~/.local/share/keng)")
    parser.add_argument(
        "--store",
        help="event store URL, e.g. postgres://user@host:5432/db (default: $KENG_STORE, "
        "else SQLite in the data directory)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = set(MODULES.values()) if modules is None else set(modules)
    registered: set[str] = set()
    for command in COMMANDS:
        if command.module not in wanted:
            sub.add_parser(command.name, help=command.help, add_help=False)
        elif command.module not in registered:
            registered.add(command.module)
            import_module(f"keng.runtime.cli.{command.module}").register(sub)
    return parser


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Two passes: the first (every command only named) finds the command, or prints `keng --help` / `--version`;
    the second parses with that command's module registered, so `keng COMMAND --help` shows its options."""
    argv = sys.argv[1:] if argv is None else list(argv)
    json_errors = "--json" in argv
    found, _ = build_parser((), json_errors=json_errors).parse_known_args(argv)
    return build_parser([MODULES[found.command]], json_errors=json_errors).parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Load the settings, configure logging, run the command; errors become one report and an exit status. (What it
    needs is imported here, not at the top: `keng --help` needs none of it.)"""
    import structlog

    from keng.domain.errors import InvalidValue
    from keng.runtime.cli.output import CommandError
    from keng.runtime.config import load_settings
    from keng.runtime.logs import configure_logging

    try:
        settings = load_settings(data_dir=args.data, store_url=args.store)
    except InvalidValue as e:
        return fail(args, CommandError("cấu hình không hợp lệ", str(e), rule=e.rule), status=2)
    configure_logging(settings.log_format, settings.log_level)
    structlog.contextvars.bind_contextvars(command=args.command, actor=getattr(args, "actor", None))
    try:
        return int(args.handler(args, settings) or 0)
    except BrokenPipeError:
        raise
    except Exception as e:
        return fail(args, e)


def fail(args: argparse.Namespace, error: Exception, *, status: int = 1) -> int:
    """Report a failed command once: a line for people, or one JSON object under `--json`; a crash (an error of no
    known kind) is logged with its traceback and ends with status 70 (EX_SOFTWARE)."""
    import orjson
    import structlog

    from keng.runtime.cli.errors import failure_of, unexpected
    from keng.runtime.logs import report_error

    failure = failure_of(error)
    if failure is None:
        structlog.get_logger(__name__).exception("command.crashed", command=args.command)
        failure, status = unexpected(error), 70
    if getattr(args, "json", False):
        report = {k: v for k, v in failure._asdict().items() if k != "successors" or failure.rule == "area-ended"}
        sys.stderr.write(orjson.dumps({**report, "command": args.command}).decode() + "\n")
    else:
        report_error(f"lỗi: {failure.headline} — {failure.detail}", command=args.command)
    return status


def _stdout_to_devnull() -> None:
    """After a broken pipe: what is still buffered for stdout goes nowhere (the interpreter flushes it at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (a test's capture): nothing to redirect
        pass
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `keng` console script."""
    os.umask(PRIVATE_UMASK)  # whatever this process creates (libraries included) is private to its owner
    try:
        try:
            return run(parse(argv))
        finally:
            sys.stdout.flush()  # here, so that a closed pipe is met inside the handler below, not at exit
    except BrokenPipeError:
        _stdout_to_devnull()
        return PIPE_CLOSED
