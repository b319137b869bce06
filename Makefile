# The two commands (README): `make run` starts the whole sandbox stack; `make test` runs the whole suite.
.PHONY: run test setup unit bench triage-model

run: setup
	bash scripts/run-stack.sh

test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

unit: setup
	.venv/bin/python -m pytest tests/unit

bench: setup
	bash bench/run_all.sh

# The packaged triage model, trained on the tuning part of the labelled transcripts only (tests/data/triage/README.md).
triage-model: setup
	.venv/bin/python -m gateway.cli.main triage train tests/data/triage/tuning/*.jsonl --out ivr/triage/default_model.json
