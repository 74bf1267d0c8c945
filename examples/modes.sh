#!/bin/sh
# Seeds 000, 002 and 004 with ctnet: the default bridge, host, none and container modes, one command at a time.
# Run as root after scripts/setup.sh, from the repository or copied anywhere (ctnet is then taken from
# PATH). Removes everything it made when it ends.
# The same topology as one lab file: examples/modes.yaml.
set -u
# this clone's ctnet when run from it, else the one on PATH (scripts/setup.sh links it there)
CTNET="$(dirname "$0")/../bin/ctnet"
[ -x "$CTNET" ] || CTNET=$(command -v ctnet) || { echo "$0: ctnet is not on PATH (run scripts/setup.sh)" >&2; exit 1; }
ctnet() { "$CTNET" "$@"; }
# commands in bold on a terminal; plain when piped or NO_COLOR is set
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }; else say() { printf '\n$ %s\n' "$*"; }; fi

cleanup() {
  ctnet rm -f sidecar >/dev/null 2>&1
  ctnet rm -f bridged bridged2 hosted isolated >/dev/null 2>&1
}
trap cleanup EXIT INT TERM
cleanup

# bridge mode (the default): a namespace, a veth pair into ctnet0 (ctnet's docker0), an address from it
say ctnet run -d --name bridged -- socat TCP-LISTEN:7000,bind=127.0.0.1,fork,reuseaddr "'SYSTEM:echo hello from the loopback of bridged'"
ctnet run -d --name bridged -- socat TCP-LISTEN:7000,bind=127.0.0.1,fork,reuseaddr 'SYSTEM:echo hello from the loopback of bridged'
say ctnet run -d --name bridged2; ctnet run -d --name bridged2
say "ip -br addr show ctnet0    # the gateway, like docker0's 172.17.0.1/16"; ip -br addr show ctnet0
say "ip -br link show master ctnet0    # one veth per container"; ip -br link show master ctnet0
say "ctnet exec bridged ip -4 -br addr"; ctnet exec bridged ip -4 -br addr
b=$(ctnet inspect bridged | sed -n 's/.*"IPAddress": "\(.*\)".*/\1/p' | head -n 1)
say "ctnet exec bridged2 ping -c 1 $b    # by address: works"; ctnet exec bridged2 ping -c 1 -W 1 "$b"
say "ctnet exec bridged2 ping -c 1 bridged    # by name: the default bridge gives no names"
ctnet exec bridged2 ping -c 1 -W 1 bridged

# host mode: no namespace of its own
say ctnet run -d --net host --name hosted; ctnet run -d --net host --name hosted
say "ctnet exec hosted ip -br link | wc -l    # as many as the host has: $(ip -br link | wc -l)"
ctnet exec hosted ip -br link | wc -l

# none mode: only lo
say ctnet run -d --net none --name isolated; ctnet run -d --net none --name isolated
say "ctnet exec isolated ip -br link"; ctnet exec isolated ip -br link

# container mode: another container's namespace, its loopback included
say ctnet run -d --net container:bridged --name sidecar; ctnet run -d --net container:bridged --name sidecar
say "ctnet exec sidecar ip -4 -br addr    # bridged's eth0 and address"; ctnet exec sidecar ip -4 -br addr
say "ctnet exec sidecar socat -u TCP:127.0.0.1:7000 -    # bridged's loopback listener answers"
ctnet exec sidecar socat -u TCP:127.0.0.1:7000 -
say "ctnet exec bridged2 socat -u TCP:127.0.0.1:7000 -    # from any other namespace it does not"
ctnet exec bridged2 socat -u TCP:127.0.0.1:7000 - 2>&1 | sed 's/.*E connect/E connect/'
say ctnet ps; ctnet ps
exit 0
