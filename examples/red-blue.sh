#!/bin/sh
# Seed 001's red/blue demo with ctnet: two user networks, four containers, names only within a network.
# Run as root after scripts/setup.sh, from the repository or copied anywhere (ctnet is then taken from
# PATH). Removes everything it made when it ends.
set -u
# this clone's ctnet when run from it, else the one on PATH (scripts/setup.sh links it there)
CTNET="$(dirname "$0")/../bin/ctnet"
[ -x "$CTNET" ] || CTNET=$(command -v ctnet) || { echo "$0: ctnet is not on PATH (run scripts/setup.sh)" >&2; exit 1; }
ctnet() { "$CTNET" "$@"; }
# commands in bold on a terminal; plain when piped or NO_COLOR is set
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }; else say() { printf '\n$ %s\n' "$*"; }; fi

cleanup() {
  ctnet rm -f ubuntu1 ubuntu2 ubuntu3 ubuntu4 >/dev/null 2>&1
  ctnet net rm red blue >/dev/null 2>&1
}
trap cleanup EXIT INT TERM
cleanup

say ctnet net create red;  ctnet net create red
say ctnet net create blue; ctnet net create blue
for spec in red:ubuntu1 red:ubuntu2 blue:ubuntu3 blue:ubuntu4; do
  say ctnet run -d --net "${spec%%:*}" --name "${spec#*:}"
  ctnet run -d --net "${spec%%:*}" --name "${spec#*:}"
done
say ctnet net ls; ctnet net ls
say ctnet ps; ctnet ps
say "ctnet exec ubuntu4 cat /etc/hosts"; ctnet exec ubuntu4 cat /etc/hosts

say "ctnet exec ubuntu4 ping -c 2 ubuntu3    # same network: works"
ctnet exec ubuntu4 ping -c 2 -W 1 ubuntu3
say "ctnet exec ubuntu4 ping -c 2 ubuntu2    # other network: the name is unknown"
ctnet exec ubuntu4 ping -c 2 -W 1 ubuntu2
# as with docker: a user network's address is under Networks (the top-level IPAddress is the default bridge's)
u2=$(ctnet inspect -f '{{.NetworkSettings.Networks.red.IPAddress}}' ubuntu2)
say "ctnet exec ubuntu4 ping -c 2 $u2    # ubuntu2 by address: dropped by the isolation rules"
ctnet exec ubuntu4 ping -c 2 -W 1 "$u2"

say ctnet net connect blue ubuntu1; ctnet net connect blue ubuntu1
say "ctnet exec ubuntu4 ping -c 2 ubuntu1    # ubuntu1 is on blue now"
ctnet exec ubuntu4 ping -c 2 -W 1 ubuntu1
say ctnet net disconnect blue ubuntu1; ctnet net disconnect blue ubuntu1
say "ctnet exec ubuntu4 ping -c 2 ubuntu1    # and gone again"
ctnet exec ubuntu4 ping -c 2 -W 1 ubuntu1
exit 0
