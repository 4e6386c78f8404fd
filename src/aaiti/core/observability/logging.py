"""structlog configuration: JSON lines in production, a readable console in dev.

``request_id`` and ``user_id`` are bound per request through contextvars, so every line logged while
serving a request carries them. Values that look like tokens are never logged by our code; the access log
prints the path without the query string.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.tracebacks import ExceptionDictTransformer


def configure_logging(*, level: str = "INFO", json_logs: bool = True) -> None:
    # Tracebacks never carry frame locals: they would put tokens and passwords into the logs.
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=(
            [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
                renderer,
            ]
            if json_logs
            else [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
        ),
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints the raw path with its query string; our middleware logs requests instead.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx/httpcore log every request's full URL at INFO; the market client logs its own upstream events, and a
    # URL (query string included) is not something to write down by default.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
