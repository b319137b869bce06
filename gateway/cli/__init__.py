"""`hotline`: the command line, one module per verb group."""
