#!/usr/bin/env bash
# `make test`: set up unattended, then run the whole suite (unit and integration against the real stack).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
