"""structlog set-up: JSON lines when not on a terminal (production), pretty output on a terminal. Logs go to stderr.

In production every line on stderr is one JSON object: keng's own lines, and those of the libraries that log through
the stdlib `logging` module (aiohttp's "Error handling request", asyncio's "Task exception was never retrieved"),
`warnings.warn`, uncaught exceptions in the main thread and in other threads, and unraisable exceptions. A traceback
is a structured field (`exception`: type, value and frames, without local variables), never raw text. Repeated
warnings and errors are rate-limited (runtime/log_limits.py). `KENG_LOG_FORMAT=json|console|auto` chooses.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer

from keng.runtime.log_limits import SUMMARY_EVENT, RepeatLimiter

# Locals stay out of logs: they can hold tokens and secrets, and they make a line unbounded.
TRACEBACKS = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False, max_frames=20))
log = structlog.get_logger(__name__)


def _orjson_dumps(obj: object, default: object = None) -> str:
    return orjson.dumps(obj, default=default).decode()  # type: ignore[arg-type]


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing (not at configuration): a logger cached by
    structlog must not keep a stream that was since replaced and closed (test capture, daemonisation)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


# Libraries' lines that ask nothing of the person reading them, by logger and message template: shown at debug level
# only. aiomqtt notes its queue at warning level on every publish past ten in flight, which a fan-out always is.
CHATTER: dict[str, frozenset[str]] = {"mqtt": frozenset({"There are %d pending publish calls."})}


def _demote_chatter(shown: int) -> Callable[[logging.LogRecord], bool]:
    """A handler filter: a chatter record becomes a debug record, kept only when debug lines are shown."""

    def keep(record: logging.LogRecord) -> bool:
        if record.msg not in CHATTER.get(record.name, ()):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return shown <= logging.DEBUG

    return keep


class _KengHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler keng installs (told apart from handlers others installed, so a second set-up replaces it)."""


_current: list[RepeatLimiter] = []
_json_lines: list[bool] = [False]


def _flush_at_exit() -> None:
    for limiter in _current:
        limiter.flush()


atexit.register(_flush_at_exit)


def _report_suppressed(summary: dict[str, Any]) -> None:
    log.warning(SUMMARY_EVENT, **summary)


def configure_logging(
    fmt: str = "auto", level: str = "info", *, burst: int = 10, window_s: float = 60.0
) -> RepeatLimiter:
    """Configure structlog, the stdlib's `logging` and `warnings`, and the uncaught-exception hooks, once for the
    process; returns the repeat limiter (its counts are reported at exit too)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if use_json
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    limiter = RepeatLimiter(_report_suppressed, burst=burst, window_s=window_s)
    _current[:], _json_lines[0] = [limiter], use_json
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *([TRACEBACKS] if use_json else []),  # the console renderer prints tracebacks itself
    ]
    numeric = logging.getLevelName(level.upper())
    # The chain goes into the list instance structlog already holds, not a new one: a logger cached under an earlier
    # set-up (`cache_logger_on_first_use`) keeps a reference to that list, and must follow this one (and structlog's
    # `capture_logs`, which fills the same instance) rather than the chain it was first used with.
    chain: list[structlog.typing.Processor] = [limiter, *shared, renderer]
    processors = structlog.get_config()["processors"]
    if isinstance(processors, list):
        processors[:] = chain
    else:  # someone configured a tuple: no logger can share it anyway
        processors = chain
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _route_stdlib(shared, renderer, limiter, max(numeric, logging.WARNING), numeric)
    if use_json:
        _route_uncaught()
    return limiter


def _route_stdlib(
    shared: list[structlog.typing.Processor],
    renderer: structlog.typing.Processor,
    limiter: RepeatLimiter,
    level: int,
    shown: int,
) -> None:
    """Libraries' records (warnings and up: their info lines are noise here; `CHATTER` only at debug level) through
    the same processors."""
    handler = _KengHandler(_CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(_demote_chatter(shown))
    handler.addFilter(limiter.filter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _KengHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger


def _uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    log.critical("process.crashed", exc_info=(exc_type, exc, tb))


def _thread_crashed(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else None
    log.error("thread.crashed", thread=name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def _unraisable(info: Any) -> None:
    exc_info = (info.exc_type, info.exc_value, info.exc_traceback) if info.exc_value is not None else None
    log.error("exception.unraisable", message=info.err_msg, object=repr(info.object)[:200], exc_info=exc_info)


def _route_uncaught() -> None:
    sys.excepthook = _uncaught
    threading.excepthook = _thread_crashed
    sys.unraisablehook = _unraisable


def report_error(text: str, **fields: Any) -> None:
    """A command's error report for a person: the text itself on stderr, or, when logs are JSON lines (production),
    one JSON line carrying it as `message` (never filtered by the log level: it is the command's answer)."""
    if not _json_lines[0]:
        print(text, file=sys.stderr)
        return
    line = {"event": "command.failed", "level": "error", "message": text, **fields}
    line["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    sys.stderr.write(_orjson_dumps(line, default=str) + "\n")
