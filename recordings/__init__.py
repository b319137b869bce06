"""Recording files, conversion and retention (the callers' spoken descriptions behind the ticket pre-fill)."""
