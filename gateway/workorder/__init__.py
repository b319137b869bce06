"""The units' handling of tickets, as the office's work-order system reports it (art. 10-13)."""
