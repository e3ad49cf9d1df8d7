#!/usr/bin/env bash
# Installs the system services Pulse's tests start themselves: redis-server (integration,
# cluster and fault tests) and Chromium (dashboard end-to-end tests). Needs root and
# Debian's apt when something is missing.
#   bash scripts/ensure-test-deps.sh                 # both (npm run test:all)
#   bash scripts/ensure-test-deps.sh redis-server    # only what npm test needs
set -euo pipefail
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(redis-server chromium)
missing=()
for dep in "${wanted[@]}"; do
  case "$dep" in
    redis-server) command -v redis-server >/dev/null 2>&1 || missing+=(redis-server) ;;
    chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
    *) echo "ensure-test-deps: unknown dependency $dep" >&2; exit 2 ;;
  esac
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "Pulse's tests need: ${missing[*]}. Install them (Debian: apt-get install -y ${missing[*]}) and run again." >&2
  exit 1
fi
echo "Installing ${missing[*]} for the tests..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
