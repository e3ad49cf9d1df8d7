#!/usr/bin/env bash
# Many WebSocket users against one embedded gateway on this machine (default 10,000).
# The gateway runs in its own process; both inherit the raised file-descriptor limit.
#   USERS=10000 RATE=5 load-tests/stretch.sh [more harness options]
set -euo pipefail
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cd "$(dirname "$0")/.."
exec node --import tsx load-tests/harness/run.ts --embedded --scenario dashboard-ws \
  --users "${USERS:-10000}" --rate "${RATE:-5}" --ramp-up "${RAMP_UP:-60s}" --duration "${DURATION:-60s}" \
  --profile "${PROFILE:-pulse}" "$@"
