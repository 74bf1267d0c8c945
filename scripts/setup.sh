#!/bin/sh
# Installs what ctnet needs on Debian (as root) and builds it. Safe to run again.
set -eu
cd "$(dirname "$0")/.."
need=""
for pair in ip:iproute2 iptables:iptables ping:iputils-ping socat:socat nc:netcat-openbsd nsenter:util-linux sysctl:procps ss:iproute2 brctl:bridge-utils conntrack:conntrack; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need="$need ${pair#*:}"
done
if [ -n "$need" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq $need >/dev/null
fi
if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "ctnet needs Node.js 20 or newer (https://nodejs.org or NodeSource's Debian packages)" >&2
  exit 1
fi
[ -d node_modules/.bin ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
