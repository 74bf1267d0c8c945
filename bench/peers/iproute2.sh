#!/usr/bin/env bash
# The floor for a tool that drives iproute2. Per container, the kernel work of ctnet's `run` on a user
# network: a namespace, a veth pair into the bridge, an address, eth0 and lo up, a default route. First
# as a shell script does it, one `ip` process per command; then the same through `ip -batch`, one process
# for the host's side and one per namespace for its inside, which no tool calling iproute2 can beat.
# Teardown is deleting the namespaces (the veths go with them).
# Usage: iproute2.sh [N]. Uses 10.232.0.0/16, bridge ctbench-fl0, namespaces ctbp* and ctbb*.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
command -v ip >/dev/null || skip "iproute2 is not installed (apt-get install iproute2)"

BR=ctbench-fl0
! ip link show "$BR" >/dev/null 2>&1 || in_use "bridge $BR"
netns_free "ctb[pb][0-9]+$" || in_use "a namespace ctbp*/ctbb*"
WORK=$(mktemp -d)
bridge_made=0 per_command_made=0 batch_made=0
cleanup() {
  local i
  for ((i = 1; i <= per_command_made; i++)); do ip netns del "ctbp$i" 2>/dev/null || :; done
  for ((i = 1; i <= batch_made; i++)); do ip netns del "ctbb$i" 2>/dev/null || :; done
  [ "$bridge_made" = 0 ] || ip link del "$BR" 2>/dev/null || :
  rm -rf "$WORK"
}
trap cleanup EXIT

ip link add "$BR" type bridge && bridge_made=1
ip link set "$BR" up
ip addr add 10.232.0.1/16 dev "$BR"

now; t0=$NOW
for ((i = 1; i <= N; i++)); do
  ns=ctbp$i
  ip netns add "$ns"; per_command_made=$i
  ip link add "$ns" type veth peer name eth0 netns "$ns"
  ip link set "$ns" master "$BR" up
  ip -n "$ns" addr add "10.232.$((i / 250)).$((i % 250 + 2))/16" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" route add default via 10.232.0.1
done
now; t1=$NOW
for ((i = 1; i <= N; i++)); do ip netns del "ctbp$i"; done
per_command_made=0
now; t2=$NOW

# the batches are written before the clock starts: only ip's own work is timed
for ((i = 1; i <= N; i++)); do
  echo "netns add ctbb$i" >> "$WORK/namespaces"
  printf 'link add ctbb%d type veth peer name eth0 netns ctbb%d\nlink set ctbb%d master %s up\n' "$i" "$i" "$i" "$BR" >> "$WORK/host"
  printf 'addr add 10.232.%d.%d/16 dev eth0\nlink set eth0 up\nlink set lo up\nroute add default via 10.232.0.1\n' $((i / 250)) $((i % 250 + 2)) > "$WORK/inside$i"
  echo "netns del ctbb$i" >> "$WORK/teardown"
done
now; t3=$NOW
batch_made=$N # the names were free: whatever of them exists after a failure is this script's
ip -batch "$WORK/namespaces"
ip -batch "$WORK/host"
for ((i = 1; i <= N; i++)); do ip -n "ctbb$i" -batch "$WORK/inside$i"; done
now; t4=$NOW
ip -batch "$WORK/teardown"
batch_made=0
now; t5=$NOW

report iproute2-per-command $((t1 - t0)) $((t2 - t1))
report iproute2-batch $((t4 - t3)) $((t5 - t4))
