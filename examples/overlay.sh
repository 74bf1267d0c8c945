#!/bin/sh
# Seed 003's overlay story on one machine: three hosts that share an etcd store, one overlay network
# across them, a container on each host, and the pings between them riding VXLAN over the underlay.
# Each "host" is a private network, mount, pid and UTS namespace (its own links, /run/netns, /etc/netns
# and ctnet state dir); an underlay bridge in another namespace joins their eth1; etcd runs in a
# namespace of its own on it. Run as root after scripts/setup.sh (needs etcd: apt-get install etcd-server
# etcd-client). Nothing is left behind: every namespace dies with its holder when the script ends.
set -u
CTNET="$(cd "$(dirname "$0")/.." && pwd)/bin/ctnet"
[ -x "$CTNET" ] || CTNET=$(command -v ctnet) || { echo "$0: ctnet is not on PATH (run scripts/setup.sh)" >&2; exit 1; }
command -v etcd >/dev/null || { echo "$0: etcd not found: apt-get install etcd-server etcd-client" >&2; exit 1; }
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then say() { printf '\n\033[1m%s\033[0m\n' "$*"; }; else say() { printf '\n%s\n' "$*"; }; fi

WORK=$(mktemp -d /tmp/ctnet-overlay-example.XXXXXX)
HOLDERS=""
cleanup() {
  # SIGKILL: unshare would pass a SIGTERM on to its init, which, as pid 1, ignores it; --kill-child then
  # kills the init, and with it every process of the namespace (etcd, the agents, the containers)
  for h in $HOLDERS; do kill -KILL "$h" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
mkdir -p /run/netns /etc/netns /run/ctnet

# newhost NAME: a private host; sets INIT to the pid of its init (as this shell sees it)
newhost() {
  unshare --net --mount --uts --pid --fork --kill-child --propagation private sh -c "
    mount -t proc proc /proc && mount -t sysfs sysfs /sys &&
    mount -t tmpfs tmpfs /run/netns && mount -t tmpfs tmpfs /etc/netns && mount -t tmpfs tmpfs /run/ctnet &&
    hostname $1 && ip link set lo up && exec sleep infinity" &
  HOLDERS="$HOLDERS $!"
  INIT=""
  while [ -z "$INIT" ]; do INIT=$(cat /proc/$!/task/$!/children 2>/dev/null | cut -d' ' -f1); done
  # the init is up once its mounts are: its hostname says so
  while [ "$(nsenter -t "$INIT" -u hostname 2>/dev/null)" != "$1" ]; do sleep 0.05; done
}
# on NAME_INIT CMD…: runs CMD inside a host, with its own ctnet state dir
on() { pid=$1; dir=$2; shift 2; nsenter -t "$pid" -n -m -u -p -- env CTNET_STATE_DIR="$WORK/$dir" NO_COLOR=1 "$@"; }
# plug INIT N: the host's eth1 on the underlay, address 10.77.0.N
plug() {
  nsenter -t "$UNDERLAY" -n -- ip link add "ul-$2" type veth peer name eth1 netns "$1"
  nsenter -t "$UNDERLAY" -n -- ip link set "ul-$2" master ul0 up
  nsenter -t "$1" -n -- ip addr add "10.77.0.$2/24" dev eth1
  nsenter -t "$1" -n -- ip link set eth1 up
}

newhost underlay; UNDERLAY=$INIT
nsenter -t "$UNDERLAY" -n -- ip link add ul0 type bridge
nsenter -t "$UNDERLAY" -n -- ip link set ul0 up
newhost etcd; ETCD=$INIT; plug "$ETCD" 100
on "$ETCD" etcd etcd --data-dir "$WORK/etcd" --listen-client-urls http://10.77.0.100:2379 --advertise-client-urls http://10.77.0.100:2379 >"$WORK/etcd.log" 2>&1 &
for n in 1 2 3; do newhost "h$n"; eval "H$n=\$INIT"; plug "$INIT" "$n"; done
until on "$H1" h1 etcdctl --endpoints=10.77.0.100:2379 --dial-timeout=1s endpoint health >/dev/null 2>&1; do sleep 0.2; done
STORE=etcd://10.77.0.100:2379

say "# each host joins the cluster: its VTEP is its underlay address"
for n in 1 2 3; do
  eval "pid=\$H$n"
  echo "h$n\$ ctnet cluster join --store $STORE --advertise 10.77.0.$n"
  on "$pid" "h$n" "$CTNET" cluster join --store "$STORE" --advertise "10.77.0.$n"
done
echo "h1\$ ctnet cluster ls"; on "$H1" h1 "$CTNET" cluster ls

say "# one overlay network, created on h1, seen by every host"
echo "h1\$ ctnet net create -d overlay --subnet 10.0.9.0/24 ov"; on "$H1" h1 "$CTNET" net create -d overlay --subnet 10.0.9.0/24 ov >/dev/null
echo "h3\$ ctnet net ls --filter driver=overlay"; on "$H3" h3 "$CTNET" net ls --filter driver=overlay

say "# a container on each host"
for n in 1 2 3; do
  eval "pid=\$H$n"
  echo "h$n\$ ctnet run -d --name c$n --net ov"; on "$pid" "h$n" "$CTNET" run -d --name "c$n" --net ov >/dev/null
done
addr_of() { on "$1" "$2" "$CTNET" inspect -f '{{.NetworkSettings.Networks.ov.IPAddress}}' "$3"; }
IP1=$(addr_of "$H1" h1 c1); IP2=$(addr_of "$H2" h2 c2); IP3=$(addr_of "$H3" h3 c3)
echo "c1 $IP1 on h1, c2 $IP2 on h2, c3 $IP3 on h3"

# each run programs the containers the store already knew; the hosts that ran earlier learn of the later
# ones through their agents' watch, a few ms later (give a loaded machine up to 5 s)
for n in 1 2 3; do
  eval "pid=\$H$n"
  i=0
  while [ "$(on "$pid" "h$n" bridge fdb show dev ctvx-4096 | grep -c ' dst ')" -lt 2 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  # and its DNS server knows the other hosts' containers (the agent writes them from their claims)
  while ! on "$pid" "h$n" "$CTNET" exec "c$n" getent hosts "c$((n % 3 + 1))" >/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
done

say "# pings across hosts, by name: container -> bridge -> VXLAN (VNI) -> underlay -> the other host's VTEP -> container"
echo "h1\$ ctnet exec c1 ping -c1 c2"; on "$H1" h1 "$CTNET" exec c1 ping -c1 -W1 c2 | grep -E 'bytes from|loss'
echo "h2\$ ctnet exec c2 ping -c1 c3"; on "$H2" h2 "$CTNET" exec c2 ping -c1 -W1 c3 | grep -E 'bytes from|loss'
echo "h3\$ ctnet exec c3 ping -c1 c1"; on "$H3" h3 "$CTNET" exec c3 ping -c1 -W1 c1 | grep -E 'bytes from|loss'

say "# what h1's VXLAN device knows: one FDB entry (MAC -> VTEP) per remote container, from the store"
on "$H1" h1 sh -c 'bridge fdb show dev ctvx-4096 | grep dst'

say "# the MTU is the underlay's 1500 less VXLAN's 50: 1422 bytes of ping fit with DF set, 1423 do not"
echo "h1\$ ctnet exec c1 ping -c1 -M do -s 1422 $IP2"; on "$H1" h1 "$CTNET" exec c1 ping -c1 -W1 -M do -s 1422 "$IP2" | grep -E 'bytes from|loss'
echo "h1\$ ctnet exec c1 ping -c1 -M do -s 1423 $IP2"; on "$H1" h1 "$CTNET" exec c1 ping -c1 -W1 -M do -s 1423 "$IP2" 2>&1 | grep -E 'too long|loss' | head -n 1

say "# cluster ls: hosts, VTEPs, containers"
echo "h2\$ ctnet cluster ls"; on "$H2" h2 "$CTNET" cluster ls

say "# h1's view: its VXLAN device under the bridge, the other hosts, and the tunnel to each (kernel + store)"
echo "h1\$ ctnet graph"; on "$H1" h1 "$CTNET" graph
say "# a packet from c1 to c2 hop by hop: route, VXLAN port, ARP, FDB, underlay, the other host; then a real ping"
echo "h1\$ ctnet trace c1 c2"; on "$H1" h1 "$CTNET" trace c1 c2
