"""A second `configure_logging` in one process (the CLI run in-process by several tests, after a first set-up) reaches
the loggers structlog cached under the first one: they log through the new chain, and `capture_logs` sees them."""

from __future__ import annotations

import orjson
import pytest
import structlog
from structlog.testing import capture_logs

from keng.runtime.logs import configure_logging


def test_a_logger_cached_under_an_earlier_set_up_follows_the_later_one(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "warning")
    logger = structlog.get_logger("keng.test.cached")
    logger.warning("test.first")  # cached from here on (cache_logger_on_first_use)
    configure_logging("json", "warning")
    with capture_logs() as logs:
        logger.error("test.second", n=2)
    assert [(e["event"], e["log_level"], e["n"]) for e in logs] == [("test.second", "error", 2)]
    logger.warning("test.third")
    events = [orjson.loads(line)["event"] for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert events == ["test.first", "test.third"]  # captured lines are not printed; the others are, as JSON
