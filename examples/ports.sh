#!/bin/sh
# Seed 002's published ports with ctnet: web1 with -p 8080:80, web2 with -P (a free host port from the
# kernel's ephemeral range), the DNAT rules behind them, and publishing on a running container.
# A small socat HTTP server stands in for nginx. Run as root after scripts/setup.sh, from the repository
# or copied anywhere (ctnet is then taken from PATH). Removes everything it made when it ends.
set -u
# this clone's ctnet when run from it, else the one on PATH (scripts/setup.sh links it there)
CTNET="$(dirname "$0")/../bin/ctnet"
[ -x "$CTNET" ] || CTNET=$(command -v ctnet) || { echo "$0: ctnet is not on PATH (run scripts/setup.sh)" >&2; exit 1; }
ctnet() { "$CTNET" "$@"; }
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }; else say() { printf '\n$ %s\n' "$*"; }; fi

WEB='exec socat TCP-LISTEN:80,fork,reuseaddr "SYSTEM:echo HTTP/1.0 200 OK; echo Content-Type\: text/plain; echo; echo Welcome to \$(hostname)!; sleep 0.2"'

cleanup() {
  ctnet rm -f web1 web2 >/dev/null 2>&1
}
trap cleanup EXIT INT TERM
cleanup

say "ctnet run -d --name web1 -p 8080:80 sh -c '<web server>'"
ctnet run -d --name web1 -p 8080:80 sh -c "$WEB" >/dev/null || exit 1
say "ctnet run -d --name web2 --expose 80 -P sh -c '<web server>'"
ctnet run -d --name web2 --expose 80 -P sh -c "$WEB" >/dev/null || exit 1
sleep 0.3

say ctnet ps; ctnet ps
say ctnet port web1; ctnet port web1
web2_port=$(ctnet port web2 80 | cut -d: -f2)
say ctnet port web2 80; ctnet port web2 80

host_ip=$(ip -4 -o addr show scope global | awk '{ sub("/.*", "", $4); print $4; exit }')
say "curl -s http://$host_ip:8080/    # the host's own address"
curl -s --max-time 3 "http://$host_ip:8080/"
say "curl -s http://localhost:$web2_port/    # loopback works too (route_localnet on the bridge)"
curl -s --max-time 3 "http://localhost:$web2_port/"

say "iptables -t nat -nL CTNET-DNAT    # the seed's 'iptables -nL -t nat', ctnet's chain"
iptables -w -t nat -nL CTNET-DNAT
say "iptables -nL CTNET-PORTS    # only DNATed traffic to the published port enters the bridge"
iptables -w -nL CTNET-PORTS

say "ctnet port publish web1 8081:80    # beyond Docker: publish on a running container"
ctnet port publish web1 8081:80
say "curl -s http://$host_ip:8081/"
curl -s --max-time 3 "http://$host_ip:8081/"
say "ctnet port unpublish web1 8081:80"
ctnet port unpublish web1 8081:80
say "curl -s http://$host_ip:8081/    # refused now"
curl -s --max-time 3 "http://$host_ip:8081/" || echo "(no answer: exit $?)"
say "ctnet rm -f --dry-run web1    # the plan: DNAT first, then ACCEPT, then the link"
ctnet rm -f --dry-run web1
exit 0
