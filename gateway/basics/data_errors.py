"""The error of a data file an office edits (menu, unit catalogue, emergency list, working-day calendar)."""
from __future__ import annotations


class DataFileError(ValueError):
    """A data file that cannot be used; names the file, the field (dotted path) and the reason."""

    def __init__(self, file: str, field_path: str, reason: str) -> None:
        super().__init__(f"{file}: {field_path}: {reason}")
        self.file = file
        self.field_path = field_path
        self.reason = reason
