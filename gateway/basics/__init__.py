"""The ground floor: basics shared by every package (phone numbers, civil time, data-file errors, back-off,
bounded waits, the key=value log format). Imports nothing else of the project."""
