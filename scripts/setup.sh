#!/usr/bin/env bash
# Set up everything the stack and the tests need on a Debian 12/13 machine, as root. Safe to run again: what is
# there already is reused (Debian packages, .venv, the cached Asterisk root).
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(python3 python3-venv python3-dev gcc sip-tester mosquitto mosquitto-clients espeak-ng sox ffmpeg
          debootstrap sqlite3 procps iproute2 ca-certificates chromium chromium-driver
          fonts-droid-fallback postgresql)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian starts a system mosquitto on 1883 and a PostgreSQL cluster on 5432 where systemd runs; the stack runs its
# own broker, and the tests and `stack up --postgres` their own PostgreSQL clusters.
for service in mosquitto postgresql; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl disable --now "$service" || true
  fi
done
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
root=${HOTLINE_ASTERISK_ROOT:-/var/cache/hotline-gateway/asterisk-root}
bash scripts/build-asterisk-root.sh "$root"
# Asterisk runs as a system user of its own (hotline-asterisk), the same uid on the host and in the root: the
# root's asterisk user otherwise has whatever uid Debian gave it there (101), another account's on the host.
.venv/bin/python -m gateway.sandbox.asterisk_account "$root"
