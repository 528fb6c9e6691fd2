"""structlog configuration: JSON lines on stderr (or a console renderer for humans)."""

from __future__ import annotations

import json as stdlib_json
import logging
import sys
from collections.abc import Callable
from typing import Any

import orjson
import structlog


def _dumps(value: Any, default: Callable[[Any], Any]) -> str:
    # orjson renders a line in half the time of the standard library's json, which matters with one
    # access-log line per request; what it refuses (an integer past 64 bits) still gets its line.
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return stdlib_json.dumps(value, default=default)


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    # The start-up check of the schema revision goes through Alembic, whose INFO lines ("Context impl
    # SQLiteImpl.") read like a migration running: the server only reports problems.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps) if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
