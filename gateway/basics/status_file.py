"""The gateway's status file (``run/gateway.status.json``), which ``hotline stack status`` reads.

It must stay writable when the state disk is full, since that is when the operator most needs to see what is
wrong. So the file always has the same padded size (JSON allows trailing whitespace): it is normally replaced
atomically (a temporary file, then rename), and when the disk has no block for the temporary file the existing
file is overwritten in place, in the blocks it already has. Blocking: run it in a thread.
"""
from __future__ import annotations

__all__ = ["STATUS_FILE_BYTES", "write_status_file"]

import os
from pathlib import Path

STATUS_FILE_BYTES = 4096


def write_status_file(path: Path, text: str) -> None:
    """Write ``text`` (JSON) to ``path``, padded with spaces to ``STATUS_FILE_BYTES``; OSError if neither way
    works."""
    data = text.encode("utf-8")
    data += b" " * (STATUS_FILE_BYTES - len(data)) if len(data) < STATUS_FILE_BYTES else b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        if not path.exists() or path.stat().st_size < len(data):
            raise
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)
