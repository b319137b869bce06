"""The error of a data file an office edits (menu, unit catalogue, emergency list, lexicon, working-day calendar),
and reading one as TOML."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


class DataFileError(ValueError):
    """A data file that cannot be used; names the file, the field (dotted path) and the reason."""

    def __init__(self, file: str, field_path: str, reason: str) -> None:
        super().__init__(f"{file}: {field_path}: {reason}")
        self.file = file
        self.field_path = field_path
        self.reason = reason


def read_toml(path: str | Path, error: type[DataFileError]) -> dict[str, Any]:
    """A data file's TOML; an unreadable or malformed file raises `error` naming the file and "<file>"."""
    file = str(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise error(file, "<file>", f"cannot read: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise error(file, "<file>", f"not valid TOML: {e}") from e
