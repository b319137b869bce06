#!/usr/bin/env bash
# Run every benchmark and print its figures (see docs/benchmarks.md). Uses the sandbox ports: stop a running
# stack first. Takes about 10 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
echo "== machine"; nproc; free -h | head -2; uname -r; $py --version
chroot /var/cache/hotline-gateway/asterisk-root /usr/sbin/asterisk -V 2>/dev/null || true
echo "== (b) FastAGI server vs panoramisk";   $py bench/fastagi_vs_panoramisk.py
echo "== (c) restriction check, 1,000,000 numbers"; $py bench/restriction_check.py
echo "== (a) sipp through the real stack";    $py bench/sipp_load.py
echo "== (d) triage of Chinese transcripts";   $py bench/triage.py
echo "== vosk real-time factor";               $py bench/vosk_rtf.py
echo "== (e) end of speech -> stored ticket";  $py bench/prefill_latency.py
echo "== (f) AgentConnect -> screen-pop";       $py bench/screenpop_latency.py
echo "== (g) confirming key -> INVITE at the centre"; $py bench/linkage_latency.py
echo "== recording conversion (ogg/Opus, mp3, wav)"; $py bench/recording_convert.py
echo "== (i) one node on SQLite against two nodes on PostgreSQL"; $py bench/two_nodes_postgres.py
echo "== (j) the office reads on a busy month: daily report, nuisance review, export"; $py bench/office_scale.py
