#!/bin/sh
# Installs what ctnet needs on Debian (as root) and builds it. Safe to run again.
set -eu
cd "$(dirname "$0")/.."
need=""
# aardvark-dns answers the names of user networks (docs/dns.md); dig and dnsmasq (a stand-in upstream
# and systemd-resolved-like stub) are for looking at it and for the tests; etcd is the cluster store of
# overlay networks (docs/overlay.md), and the tests start their own members of it
for pair in ip:iproute2 iptables:iptables ping:iputils-ping socat:socat nc:netcat-openbsd nsenter:util-linux sysctl:procps ss:iproute2 brctl:bridge-utils conntrack:conntrack /usr/lib/podman/aardvark-dns:aardvark-dns dig:bind9-dnsutils dnsmasq:dnsmasq-base etcd:etcd-server etcdctl:etcd-client; do
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
# a node_modules linked from elsewhere (a worktree sharing another checkout's) is not this clone's to
# reinstall: npm ci would empty the directory it links to
if [ ! -L node_modules ] && ! { [ -d node_modules/.bin ] && [ node_modules/.package-lock.json -nt package-lock.json ]; }; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build

# ctnet on PATH: /usr/local/bin/ctnet links to this clone's bin/ctnet. A link to another ctnet's bin
# (another clone, npm link) moves here; anything else of that name is somebody else's and stays.
link=/usr/local/bin/ctnet
here="$(pwd -P)/bin/ctnet"
now=""
[ ! -L "$link" ] || now=$(readlink -m "$link")
# a bin/ctnet of a package named ctnet, or of a clone that is gone
is_ctnet_bin() {
  case $1 in */bin/ctnet) ;; *) return 1 ;; esac
  [ ! -e "${1%/bin/ctnet}" ] || grep -q '"name": "ctnet"' "${1%/bin/ctnet}/package.json" 2>/dev/null
}
if [ "$now" = "$here" ]; then
  : # already this clone's
elif [ -n "$now" ] && is_ctnet_bin "$now"; then
  ln -sfn "$here" "$link"
  echo "ctnet on PATH: $link links to $here (it linked to $now)"
elif [ -e "$link" ] || [ -L "$link" ]; then
  echo "setup: $link is not a link to a ctnet bin: left alone; run $here, or put $(dirname "$here") on PATH" >&2
else
  mkdir -p "$(dirname "$link")"
  ln -s "$here" "$link"
  echo "ctnet on PATH: $link links to $here"
fi
