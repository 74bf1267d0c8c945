#!/bin/sh
# Makes every peer of bench/bench.mjs available, as root on Debian: installs what is missing (docker.io,
# netavark, containernetworking-plugins, busybox-static), makes sure a Docker engine answers, and gives it
# the tiny image ctnet-bench/busybox (busybox-static in an otherwise empty file system). Safe to run again.
# Whatever it starts or changes on the host is recorded in /run/ctnet-bench/, and bench/peers/teardown.sh
# undoes exactly that. Packages stay installed; teardown names the ones this installed.
set -eu
[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 2; }
STATE=/run/ctnet-bench
IMAGE=ctnet-bench/busybox
mkdir -p "$STATE"

installed() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
need=""
# any Docker engine will do (docker-ce too, which docker.io would conflict with)
command -v dockerd >/dev/null 2>&1 || need="$need docker.io"
for pkg in netavark containernetworking-plugins busybox-static; do installed "$pkg" || need="$need $pkg"; done
if [ -n "$need" ]; then
  echo "installing$need"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq $need >/dev/null
  for pkg in $need; do echo "$pkg" >> "$STATE/installed"; done
fi

if docker info >/dev/null 2>&1; then
  echo "a Docker engine answers already: the bench uses it"
else
  # what dockerd changes on the host, for teardown to put back: it sets FORWARD's policy to DROP when it
  # turns forwarding on, loads br_netfilter, and leaves its chains and docker0 behind when it stops
  {
    echo "forward_policy=$(iptables -w -S FORWARD | awk '$1 == "-P" { print $3 }')"
    echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
    if iptables -w -S DOCKER >/dev/null 2>&1; then echo had_docker_chains=1; else echo had_docker_chains=0; fi
    if ip link show docker0 >/dev/null 2>&1; then echo had_docker0=1; else echo had_docker0=0; fi
    if [ -d /proc/sys/net/bridge ]; then echo had_br_netfilter=1; else echo had_br_netfilter=0; fi
    echo "data_root=/var/lib/ctnet-bench-docker"
  } > "$STATE/dockerd.new"
  # its own data root, removed by teardown; setsid: it outlives this shell and its terminal
  setsid dockerd --data-root /var/lib/ctnet-bench-docker --pidfile "$STATE/dockerd.pid" > "$STATE/dockerd.log" 2>&1 < /dev/null &
  mv "$STATE/dockerd.new" "$STATE/dockerd"
  tries=0
  until docker info >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 60 ]; then
      echo "$0: dockerd did not answer within 30 s; its log, $STATE/dockerd.log, ends with:" >&2
      tail -n 5 "$STATE/dockerd.log" >&2
      echo "run bench/peers/teardown.sh to undo what was started" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "started dockerd (pid $(cat "$STATE/dockerd.pid"), data in /var/lib/ctnet-bench-docker)"
fi

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
  cp /bin/busybox "$root/bin/busybox"
  for applet in sh sleep cat echo ls ip ping nc hostname; do ln -s busybox "$root/bin/$applet"; done
  tar -C "$root" -c . | docker import - "$IMAGE" >/dev/null
  rm -rf "$root"
  # into an engine this script did not start, the image is all teardown has to remove
  [ -f "$STATE/dockerd" ] || touch "$STATE/image"
  echo "made image $IMAGE"
fi
echo "peers ready: npm run bench"
