#!/usr/bin/env bash
# The CNI reference plugins as a peer: the `bridge` plugin with `host-local` addresses (gateway and
# masquerading on, as container runtimes configure it), ADD then DEL for N namespaces, one plugin
# process per call with the network config on stdin, as a runtime calls it.
# Usage: cni.sh [N]. Uses 10.233.0.0/16, bridge ctbench-cni0, namespaces ctbc*. CNI_PATH is honoured.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PLUGINS=""
for dir in ${CNI_PATH:+"$CNI_PATH"} /usr/lib/cni /opt/cni/bin; do
  if [ -x "$dir/bridge" ] && [ -x "$dir/host-local" ]; then PLUGINS=$dir; break; fi
done
[ -n "$PLUGINS" ] || skip "the CNI plugins are not installed (bench/peers/setup.sh installs Debian's containernetworking-plugins)"

BR=ctbench-cni0
! ip link show "$BR" >/dev/null 2>&1 || in_use "bridge $BR"
netns_free "ctbc[0-9]+$" || in_use "a namespace ctbc*"
WORK=$(mktemp -d)
CONFIG='{"cniVersion":"1.0.0","name":"ctbench","type":"bridge","bridge":"'$BR'","isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","subnet":"10.233.0.0/16","dataDir":"'$WORK'/ipam"}}'
made=0 added=0
cni() { # COMMAND i
  echo "$CONFIG" | CNI_COMMAND=$1 CNI_CONTAINERID="ctbench$2" CNI_NETNS="/run/netns/ctbc$2" CNI_IFNAME=eth0 CNI_PATH=$PLUGINS "$PLUGINS/bridge" >/dev/null
}
cleanup() {
  local i
  # DEL also removes the plugin's masquerading chain for that container
  for ((i = 1; i <= added; i++)); do cni DEL "$i" 2>/dev/null || :; done
  for ((i = 1; i <= made; i++)); do ip netns del "ctbc$i" 2>/dev/null || :; done
  ip link del "$BR" 2>/dev/null || :
  restore_forwarding
  rm -rf "$WORK"
}
trap cleanup EXIT

for ((i = 1; i <= N; i++)); do ip netns add "ctbc$i"; made=$i; done
now; t0=$NOW
for ((i = 1; i <= N; i++)); do cni ADD "$i"; added=$i; done
now; t1=$NOW
for ((i = 1; i <= N; i++)); do cni DEL "$i"; done
added=0
now; t2=$NOW

report cni-bridge $((t1 - t0)) $((t2 - t1))
