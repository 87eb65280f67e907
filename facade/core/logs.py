"""Structured logs: one JSON object a line, for the facade's own loggers and uvicorn's.

Privacy: nothing here logs a request body. Exceptions are written as their class and code
frames only, never their message, which could quote an applicant's values.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime
from typing import Any

ACCESS_LOGGER = "facade.access"

# NB: every attribute a bare LogRecord has, plus what Formatter adds; anything else came in
# through ``extra=`` and is written as a field. uvicorn adds color_message, a copy with ANSI codes.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """Formats a record as a JSON object: time, level, logger, message and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
            entry["frames"] = "".join(traceback.format_tb(record.exc_info[2])).rstrip()
        return json.dumps(entry, default=str)


def logging_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the process, passed to uvicorn as its ``log_config``.

    NB: uvicorn's own access log is off (``access_log=False``): it writes the raw path and query
    string; the facade's access log (``facade.access``) writes the route template instead.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"level": level},
            "uvicorn.error": {"level": level},
            # NB: httpx logs every upstream call at INFO: two more lines per prediction that the
            # access log and the upstream metrics already cover.
            "httpx": {"level": level if level == "DEBUG" else "WARNING"},
        },
    }
