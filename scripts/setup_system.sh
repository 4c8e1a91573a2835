#!/usr/bin/env bash
# System packages the test suite uses beyond PyPI: Debian's Redis 7.0 (the suite also runs
# against it, as the seeds' redis:7-alpine), Chromium + ChromeDriver (the browser test) and
# Prometheus for its promtool (the chart's alert rules are evaluated by it).
# Installs them with apt-get when running as root (CI, containers); otherwise says how.
set -euo pipefail
need=()
[ -x /usr/bin/redis-server ] || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
[ -x /usr/bin/promtool ] || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: not a Debian/Ubuntu machine; install ${need[*]} yourself for the full suite" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run 'sudo apt-get install -y ${need[*]}' for the full suite" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || echo "setup: apt-get update failed; trying the cached lists" >&2
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's packages may start servers where there is an init system; we start our own
# Redis and use only Prometheus' promtool.
if command -v service >/dev/null 2>&1; then
  service redis-server stop >/dev/null 2>&1 || true
  service prometheus stop >/dev/null 2>&1 || true
fi
exit 0
