"""What the console's HTTP server logs about requests it cannot parse.

aiohttp logs every request it cannot parse (``BadHttpMessage``, ``InvalidURLError``, ``LineTooLong``, ...) at
ERROR with a traceback, once per request: anyone who can reach the console port can fill the log (and the state
disk) with tracebacks by sending junk. The client already gets its 400; here such a record becomes one DEBUG line
naming the status and the kind of error. So does a client that went away mid-request (ConnectionResetError out
of reading its body): nobody is left to answer. A handler's own failure (a 500) stays an ERROR with its traceback.
"""
from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["MalformedRequestFilter", "console_server_logger"]

SERVER_LOGGER = "gateway.console.http"


class MalformedRequestFilter(logging.Filter):
    """Turns aiohttp's record of an unparseable request (a 4xx ``HttpProcessingError``) or of a client gone
    mid-request into one DEBUG line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= (error.code or 0) < 500:
            message, args = "event=console_bad_request status=%s error=%s", (error.code, type(error).__name__)
        elif isinstance(error, ConnectionResetError):
            message, args = "event=console_client_gone error=%s", (type(error).__name__,)
        else:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.args = message, args
        record.exc_info, record.exc_text = None, None
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def console_server_logger() -> logging.Logger:
    """The logger for the console's aiohttp server (``web.AppRunner(..., logger=...)``), filter installed once."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, MalformedRequestFilter) for f in logger.filters):
        logger.addFilter(MalformedRequestFilter())
    return logger
