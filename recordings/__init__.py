"""Recording files, conversion and retention (from the speech issue on)."""
