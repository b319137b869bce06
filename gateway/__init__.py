"""hotline-gateway: the service (wiring, call flow, config, contract) and, in sub-packages, its FastAGI layer,
store, CLI, agent console, MQTT, the ground-floor basics and the sandbox tooling. See docs/architecture.md."""
