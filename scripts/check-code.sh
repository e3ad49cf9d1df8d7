#!/usr/bin/env bash
# Lint and type-check side by side (each is single-threaded; on two cores together they take
# the time of the longer one). Prints both outputs, each under its name; fails if either does.
set -uo pipefail
cd "$(dirname "$0")/.."
lint_log=$(mktemp)
trap 'rm -f "$lint_log"' EXIT
npm run --silent lint >"$lint_log" 2>&1 &
lint=$!
npm run --silent typecheck
typecheck_status=$?
wait "$lint"
lint_status=$?
if [ -s "$lint_log" ] || [ "$lint_status" -ne 0 ]; then
  echo "== lint"
  cat "$lint_log"
fi
[ "$typecheck_status" -eq 0 ] || echo "type-check failed" >&2
[ "$lint_status" -eq 0 ] || echo "lint failed" >&2
[ "$typecheck_status" -eq 0 ] && [ "$lint_status" -eq 0 ]
