# The two commands (README): `make run` starts the whole sandbox stack; `make test` runs the whole suite.
.PHONY: run test setup unit bench

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
