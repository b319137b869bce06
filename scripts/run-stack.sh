#!/usr/bin/env bash
# `make run`: start Asterisk, mosquitto, the gateway and two simulated agents on the embedded defaults; print how
# to place a test call; stop everything on Ctrl-C (also when the output is piped: `make run | tee run.log`).
set -euo pipefail
cd "$(dirname "$0")/.."
hotline=(.venv/bin/python -m gateway.cli.main)  # this checkout's code, whatever the venv's editable install is
tail_pid=
stop() {
  # Ctrl-C reaches the whole foreground process group: a `| tee` is already gone, and a write to its pipe would
  # kill this shell (SIGPIPE) before the stack is down; a second Ctrl-C would cut `stack down` short. So both
  # are ignored from here on (stack down ignores them too: Python keeps a SIGINT ignored at start ignored), and
  # what is said goes to stderr, which is usually still the terminal.
  trap '' INT TERM PIPE
  trap - EXIT
  if [ -n "$tail_pid" ]; then kill "$tail_pid" 2>/dev/null || true; fi  # a background job ignores SIGINT
  echo >&2 || true
  "${hotline[@]}" stack down >&2 || true
}
trap stop INT TERM EXIT
"${hotline[@]}" stack up --simulated-agents
state=$(.venv/bin/python -c 'from gateway.config import load_config; print(load_config().state_dir)')
cat <<MSG

The hotline sandbox is up. Place a test call (another terminal, in $(pwd)):
  .venv/bin/hotline call --from 13800138000 --dtmf 3 --json        # a complaint, answered by a simulated agent
  .venv/bin/hotline restrict add 13900001111 --reason 辱骂话务员 --operator demo
  .venv/bin/hotline call --from 13900001111 --hold 40 --json       # refused with the art. 9 announcement
  .venv/bin/hotline calls list
  .venv/bin/hotline stack status
Or any SIP phone/softphone on this machine: call sip:12345@127.0.0.1:5060 (no auth from 127.0.0.1).
Agent console: http://127.0.0.1:8088/  (agent1, password in $state/secrets/mqtt/agent1.secret)
Gateway log: $state/logs/gateway.log     Ctrl-C stops everything.
MSG
tail -n 0 -F "$state/logs/gateway.log" &
tail_pid=$!
wait
