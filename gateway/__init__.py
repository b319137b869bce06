"""hotline-gateway: the 12345 hotline's call-entry gateway (service, config, store, FastAGI, CLI)."""
