#!/usr/bin/env bash
# Podman's network tool as a peer: `netavark setup` then `netavark teardown` of N namespaces on one
# bridge network with static addresses (its iptables firewall driver, as Debian's 1.4 uses), each call
# one process reading the container's network JSON, as podman calls it.
# Usage: netavark.sh [N]. Uses 10.231.0.0/16, bridge ctbench-nv0, namespaces ctbn*.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
NETAVARK=""
for candidate in /usr/lib/podman/netavark /usr/libexec/podman/netavark "$(command -v netavark || :)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then NETAVARK=$candidate; break; fi
done
[ -n "$NETAVARK" ] || skip "netavark is not installed (bench/peers/setup.sh installs Debian's netavark)"

BR=ctbench-nv0
! ip link show "$BR" >/dev/null 2>&1 || in_use "bridge $BR"
netns_free "ctbn[0-9]+$" || in_use "a namespace ctbn*"
# netavark keeps its common chains after its last container; remove them only if they are ours
netavark_chains() { iptables -w -t "$1" -S | awk '/^-N NETAVARK/ { print $2 }'; }
had_chains=$( { netavark_chains filter; netavark_chains nat; } | wc -l)
WORK=$(mktemp -d)
made=0
cleanup() {
  local i t rule chain
  for ((i = 1; i <= made; i++)); do
    "$NETAVARK" --config "$WORK" teardown "/run/netns/ctbn$i" < "$WORK/c$i.json" >/dev/null 2>&1 || :
    ip netns del "ctbn$i" 2>/dev/null || :
  done
  ip link del "$BR" 2>/dev/null || :
  if [ "$had_chains" = 0 ]; then
    for t in filter nat; do
      # jumps from the built-in chains first (read back from iptables -S, hence the eval for their quotes)
      iptables -w -t "$t" -S | grep -E '^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) .*-j NETAVARK' | sed 's/^-A /-D /' |
        while read -r rule; do eval "iptables -w -t $t $rule"; done
      for chain in $(netavark_chains "$t"); do iptables -w -t "$t" -F "$chain"; done
      for chain in $(netavark_chains "$t"); do iptables -w -t "$t" -X "$chain"; done
    done
  fi
  restore_forwarding
  rm -rf "$WORK"
}
trap cleanup EXIT

network='"ctbench":{"name":"ctbench","id":"c7be2c7be2c7be2c7be2c7be2c7be2c7be2c7be2c7be2c7be2c7be2c7be2c7be","driver":"bridge","network_interface":"'$BR'","subnets":[{"subnet":"10.231.0.0/16","gateway":"10.231.0.1"}],"ipv6_enabled":false,"internal":false,"dns_enabled":false}'
for ((i = 1; i <= N; i++)); do
  printf '{"container_id":"ctbench%d","container_name":"ctbench%d","networks":{"ctbench":{"interface_name":"eth0","static_ips":["10.231.%d.%d"]}},"network_info":{%s}}\n' \
    "$i" "$i" $((i / 250)) $((i % 250 + 2)) "$network" > "$WORK/c$i.json"
  ip netns add "ctbn$i"; made=$i
done

now; t0=$NOW
for ((i = 1; i <= N; i++)); do "$NETAVARK" --config "$WORK" setup "/run/netns/ctbn$i" < "$WORK/c$i.json" >/dev/null; done
now; t1=$NOW
for ((i = 1; i <= N; i++)); do "$NETAVARK" --config "$WORK" teardown "/run/netns/ctbn$i" < "$WORK/c$i.json" >/dev/null; done
now; t2=$NOW
for ((i = 1; i <= N; i++)); do ip netns del "ctbn$i"; done
made=0

report netavark $((t1 - t0)) $((t2 - t1))
