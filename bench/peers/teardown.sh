#!/bin/sh
# Undoes what bench/peers/setup.sh recorded in /run/ctnet-bench/, and nothing else: the Docker engine it
# started (stopped by its pid, its data root removed, the chains, docker0, FORWARD policy, ip_forward and
# br_netfilter it changed put back), or the image it added to an engine that was there before. Packages
# it installed stay installed: they are named, with the command that removes them.
set -u
[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 2; }
STATE=/run/ctnet-bench
[ -d "$STATE" ] || { echo "bench/peers/setup.sh started nothing here: nothing to undo"; exit 0; }

if [ -f "$STATE/image" ]; then
  docker image rm ctnet-bench/busybox >/dev/null 2>&1 && echo "removed image ctnet-bench/busybox"
  rm -f "$STATE/image"
fi

if [ -f "$STATE/dockerd" ]; then
  . "$STATE/dockerd"
  pid=$(cat "$STATE/dockerd.pid" 2>/dev/null || :)
  # only that pid, and only while it is still a dockerd (not a recycled pid)
  if [ -n "$pid" ] && grep -q '^dockerd' "/proc/$pid/comm" 2>/dev/null; then
    # every container of this engine is the bench's: its data root is its own
    containers=$(docker ps -aq)
    # shellcheck disable=SC2086
    [ -z "$containers" ] || docker rm -f $containers >/dev/null
    kill "$pid"
    tries=0
    while [ -d "/proc/$pid" ] && [ "$tries" -lt 60 ]; do sleep 0.5; tries=$((tries + 1)); done
    if [ -d "/proc/$pid" ]; then echo "$0: dockerd (pid $pid) did not stop within 30 s; run this again" >&2; exit 1; fi
    echo "stopped dockerd (pid $pid)"
  fi
  rm -rf "$data_root"
  if [ "$had_docker_chains" = 0 ]; then
    for table in filter nat; do
      # the jumps and docker0 rules dockerd put in the built-in chains, then its own chains
      iptables -w -t "$table" -S | grep -E '^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) ' | grep -E -- '-j DOCKER|docker0' |
        sed 's/^-A /-D /' | while read -r rule; do eval "iptables -w -t $table $rule"; done
      for chain in DOCKER DOCKER-ISOLATION-STAGE-1 DOCKER-ISOLATION-STAGE-2 DOCKER-USER; do iptables -w -t "$table" -F "$chain" 2>/dev/null; done
      for chain in DOCKER DOCKER-ISOLATION-STAGE-1 DOCKER-ISOLATION-STAGE-2 DOCKER-USER; do iptables -w -t "$table" -X "$chain" 2>/dev/null; done
    done
  fi
  [ "$had_docker0" = 1 ] || ip link del docker0 2>/dev/null
  iptables -w -P FORWARD "$forward_policy"
  echo "$ip_forward" > /proc/sys/net/ipv4/ip_forward
  if [ "$had_br_netfilter" = 0 ] && [ -d /proc/sys/net/bridge ]; then
    modprobe -r br_netfilter 2>/dev/null || echo "note: dockerd loaded br_netfilter, which could not be unloaded here (modprobe -r br_netfilter)"
  fi
  echo "put back: FORWARD policy $forward_policy, ip_forward $ip_forward$([ "$had_docker_chains" = 0 ] && echo ", Docker's chains removed")"
  rm -f "$STATE/dockerd" "$STATE/dockerd.pid" "$STATE/dockerd.log"
fi

if [ -f "$STATE/installed" ]; then
  packages=$(tr '\n' ' ' < "$STATE/installed")
  echo "setup.sh installed: ${packages% }; to remove them: apt-get purge ${packages% }"
  rm -f "$STATE/installed"
fi
rmdir "$STATE" 2>/dev/null
echo "peers stopped"
