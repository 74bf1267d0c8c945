# Sourced by every peer driver. A driver takes the number of containers N (default 50), works only on
# names and addresses of its own (it refuses to start when one is in use, so its clean-up never removes
# anything it did not make), and prints on stdout, for bench/bench.mjs, one line per figure:
#   NAME N=<containers> setup_ms=<per container> teardown_ms=<per container>
# or, when its peer is not installed here, the one line
#   skip: <why, and how to install it>
# and exits 0 in both cases.

N=${1:-50}
case $N in '' | *[!0-9]* | 0) echo "usage: $0 [N]: N must be a whole number above 0" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "$0: must run as root (it makes namespaces, links and rules)" >&2; exit 2; }

skip() { echo "skip: $*"; exit 0; }

# microseconds now, read without starting a process (timed loops call it)
now() { NOW=${EPOCHREALTIME/./}; }

# microseconds for N containers, as milliseconds per container with one decimal
per_container() {
  local tenths=$(( ($1 + N * 50) / (N * 100) ))
  echo "$((tenths / 10)).$((tenths % 10))"
}

report() { echo "$1 N=$N setup_ms=$(per_container "$2") teardown_ms=$(per_container "$3")"; }

in_use() { echo "$0: $1 is in use here; remove it or run elsewhere" >&2; exit 1; }
netns_free() { ! ls /run/netns 2>/dev/null | grep -Eq "^$1"; }

# netavark and the CNI bridge plugin turn IPv4 forwarding on: the host gets back what it had
FORWARDING_WAS=$(cat /proc/sys/net/ipv4/ip_forward)
restore_forwarding() { echo "$FORWARDING_WAS" > /proc/sys/net/ipv4/ip_forward; }
